"""`opencdp demo`: run the product end to end on embedded defaults and say what happened."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from opencdp.cli.context import settings_of
from opencdp.settings import DEFAULT_ROOT

if TYPE_CHECKING:
    from opencdp.demo import DemoReport


def print_report(report: DemoReport, raw: dict[str, tuple[int, int]], console: Console) -> None:
    from opencdp.demo import TENANT

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
    cli = ".venv/bin/opencdp" + ("" if report.root == DEFAULT_ROOT else f" --root {report.root}")
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
        from opencdp.demo import TENANT, run_demo
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
        if serve:
            # No stage serves anything yet: the REST API arrives with the serving layer.
            console.print("nothing to serve yet: the demo exits (the REST API is not built yet)")
