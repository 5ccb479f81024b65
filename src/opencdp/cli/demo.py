"""`opencdp demo`: run the product end to end on embedded defaults and say what happened."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from opencdp.cli.context import settings_of
from opencdp.demo import TENANT
from opencdp.settings import DEFAULT_ROOT, Settings, load_settings

if TYPE_CHECKING:
    from opencdp.demo import DemoReport


def cli_prefix(root: Path) -> str:
    return ".venv/bin/opencdp" + ("" if root == DEFAULT_ROOT else f" --root {root}")


def print_report(report: DemoReport, raw: dict[str, tuple[int, int]], console: Console) -> None:
    people = report.manifest["people"]
    action = "generated" if report.generated else "already generated (kept)"
    console.print(f"\n[bold]OpenCDP demo[/] — data root {report.root.resolve()}\n")
    console.print(f"1. {action}: {people:,} synthetic people in {report.exports}")
    files = report.manifest["files"]
    assert isinstance(files, dict)
    for name, count in files.items():
        console.print(f"     {name:<26} {count:>9,} records")

    table = Table(title="2. extracted into the raw zone (opencdp extract)", title_justify="left")
    for column in ("source", "provider", "status", "new records", "rejected", "by stream"):
        table.add_column(column)
    for result in report.extractions:
        written: dict[str, int] = {}
        for attempt in result.attempts:
            for stream, stats in attempt.summary.streams.items():
                written[stream] = written.get(stream, 0) + stats.written
        table.add_row(
            result.source,
            result.provider,
            result.status,
            f"{result.records:,}",
            f"{result.rejected:,}",
            ", ".join(f"{s} {n:,}" for s, n in sorted(written.items())) or "-",
        )
    console.print(table)

    console.print("3. what lives where:")
    for provider, (count, size) in sorted(raw.items()):
        console.print(
            f"     raw/{TENANT}/{provider}/year=…/day=…/  {count} files, {size / 1e6:.1f} MB gzip"
        )
    console.print(
        f"     serving database: {report.database} (schema t_{TENANT}, runs in opencdp)",
        soft_wrap=True,
    )
    console.print(f"     Iceberg catalog: {report.root / 'catalog.db'} (namespace {TENANT})")
    cli = cli_prefix(report.root)
    console.print("\n4. try next:")
    for command in (
        f"{cli} runs --tenant {TENANT}",
        f"{cli} schemas list --tenant {TENANT} --provider shopify",
        f"{cli} dlq list --tenant {TENANT}",
        f"{cli} extract --tenant {TENANT} --source crm    # incremental: nothing new",
        f"zcat {report.root}/raw/{TENANT}/crm/*/*/*/contacts_batch_001.ndjson.gz | head -1",
    ):
        console.print(f"     {command}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        ctx: typer.Context,
        serve: Annotated[
            bool, typer.Option(help="Keep serving after the run (--no-serve exits).")
        ] = True,
        people: Annotated[int, typer.Option(min=10, help="People in the demo tenant.")] = 2_000,
    ) -> None:
        """Generate a demo tenant and run every pipeline stage on embedded defaults."""
        from opencdp.demo import run_demo
        from opencdp.storage import store_for

        settings = settings_of(ctx)
        console = Console()
        report = run_demo(settings, people=people)
        usage: dict[str, tuple[int, int]] = {}
        for info in store_for(settings).list(f"raw/{TENANT}"):
            provider = info.key.split("/")[2]
            count, size = usage.get(provider, (0, 0))
            usage[provider] = (count + 1, size + info.size)
        print_report(report, usage, console)
        failed = [r.source for r in report.extractions if r.status == "failed"]
        if failed:
            console.print(f"[red]extraction failed for: {', '.join(failed)}[/]")
            raise typer.Exit(1)
        settings = load_settings(settings.root)  # the demo may have just written the config
        sources = settings.tenant(TENANT).sources
        live = "site" in sources and "shop_webhooks" in sources
        url, process = collect_live(settings, report.exports, console) if live else ("", None)
        if not live:
            console.print("the demo tenant declares no live sources: collection is skipped")
        api: subprocess.Popen[bytes] | None = None
        try:
            transform_step(settings, console)
            identity_step(settings, console)
            api = serving_step(settings, console)
            if serve and process is not None:
                serve_until_interrupted(settings, url, process, console)
        finally:
            for running in (process, api):
                if running is not None:
                    stop_service(running)


def transform_step(settings: Settings, console: Console) -> None:
    """Step 6: the raw zone into the curated Iceberg tables, on DuckDB."""
    from opencdp.cli.transform import print_report as print_transform
    from opencdp.db import Database
    from opencdp.transform.recorded import transform_recorded

    console.print("\n6. transform: raw zone -> curated Iceberg tables (incremental)")
    report = transform_recorded(settings, Database.from_settings(settings), TENANT)
    print_transform(report, console)
    console.print(
        f'     {cli_prefix(settings.root)} query --tenant {TENANT} "select provider, '
        'count(*) from customers group by provider"',
        soft_wrap=True,
    )


def identity_step(settings: Settings, console: Console) -> None:
    """Step 7: identity resolution into profiles, scored against the generator's truth."""
    from opencdp.cli.identity import print_resolution, print_score
    from opencdp.db import Database
    from opencdp.identity.inspect import score_tenant
    from opencdp.identity.recorded import resolve_recorded

    console.print("\n7. identity resolution: records -> unified profiles")
    report = resolve_recorded(settings, Database.from_settings(settings), TENANT)
    print_resolution(report, console)
    truth = settings.root / "generated" / TENANT / "ground_truth.csv"
    console.print("accuracy against the generator's ground truth:")
    print_score(score_tenant(settings, TENANT, truth), console)
    prefix = cli_prefix(settings.root)
    console.print(
        f"     {prefix} identity stats --tenant {TENANT}\n"
        f'     {prefix} query --tenant {TENANT} "select profile_id, email, full_name, '
        'records, order_count, total_revenue from profiles order by records desc limit 5"\n'
        f"     {prefix} identity explain --tenant {TENANT} --profile <profile_id>",
        soft_wrap=True,
    )


def serving_step(settings: Settings, console: Console) -> subprocess.Popen[bytes]:
    """Step 8: the curated tables into PostgreSQL and the search index, then the REST API
    with a fresh key; returns the running API."""
    from opencdp.cli.load import print_refresh
    from opencdp.demo_serve import lookup, serve_demo

    console.print("\n8. serving: curated tables -> PostgreSQL and the search index, REST API")
    demo, api = serve_demo(settings)
    print_refresh(demo.refresh, console)
    by_phone = lookup(demo, phone=demo.phone)
    console.print(
        f"the API at {demo.url} (OpenAPI: {demo.url}/docs) found profile {demo.profile_id} "
        f"by its email, and {_same(by_phone, demo.profile_id)} by its phone."
        f"\nAPI key of the demo tenant (shown once; `opencdp keys create` makes more):\n"
        f"  {demo.token}\nTry:\n"
        f"  curl -s -H 'Authorization: Bearer {demo.token}' "
        f"'{demo.url}/v1/profiles/lookup?email={demo.email}'\n"
        f"  curl -s -H 'Authorization: Bearer {demo.token}' "
        f"'{demo.url}/v1/profiles/search?q={demo.email[:5]}'\n"
        f"  curl -s -H 'Authorization: Bearer {demo.token}' "
        f"'{demo.url}/v1/profiles/{demo.profile_id}/events?limit=5'",
        soft_wrap=True,
    )
    return api


def _same(found: dict[str, object], profile_id: str) -> str:
    return "the same one" if found.get("profile_id") == profile_id else "ANOTHER one"


def collect_live(
    settings: Settings, exports: Path, console: Console
) -> tuple[str, subprocess.Popen[bytes]]:
    """Step 5: demo traffic through the collection service, landed by the batcher; the
    service keeps running."""
    from opencdp.demo_live import run_live

    live, process = run_live(settings, exports)
    console.print(
        f"5. live collection at {live.url}: {live.events_sent:,} tracking-API events and "
        f"{live.webhooks_sent} signed Shopify webhooks accepted; the batcher landed "
        f"{live.landed:,} events in {live.files} raw files (raw/{TENANT}/segment, "
        f"raw/{TENANT}/shopify)"
    )
    return live.url, process


def serve_until_interrupted(
    settings: Settings, url: str, process: subprocess.Popen[bytes], console: Console
) -> None:
    import threading

    from opencdp.collect.server import start_batcher
    from opencdp.demo_live import WRITE_KEY

    stop = threading.Event()
    # Ctrl-C may come as soon as the line below is printed: stop cleanly from here on.
    try:
        start_batcher(settings, stop)
        console.print(
            f"\nserving until Ctrl-C: the profile API (above) and the collection API. Try:\n"
            f"  curl -s -u {WRITE_KEY}: -H 'Content-Type: application/json' "
            f'-d \'{{"userId":"u1","event":"Demo Clicked"}}\' {url}/v1/track\n'
            f"  curl -s {url}/metrics | grep opencdp_collect_requests",
            soft_wrap=True,
        )
        process.wait()
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        stop.set()


def stop_service(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except KeyboardInterrupt:  # a second Ctrl-C: don't wait for a clean shutdown
        process.kill()
