"""`opencdp identity`: resolve, inspect, correct and score the tenant's unified profiles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from opencdp.cli.context import settings_of

if TYPE_CHECKING:
    from opencdp.identity.resolve import ResolveReport

identity_app = typer.Typer(help="Identity resolution: unified profiles from every source.")

TenantOption = Annotated[str, typer.Option(help="Tenant.")]


def print_resolution(report: ResolveReport, console: Console) -> None:
    from opencdp.identity.resolve import BACKGROUND_STAGES

    console.print(
        f"identity {report.run_id}: {report.records:,} customer records and "
        f"{report.devices:,} devices -> {report.profiles:,} profiles "
        f"({report.identified_profiles:,} with a customer record)"
    )
    links = ", ".join(f"{rule} {n:,}" for rule, n in report.links.items())
    console.print(f"links: {links}")
    console.print(
        f"blocked identifiers {report.blocked:,}, possible matches {report.possible_matches:,}, "
        f"merges {report.merges:,}, splits {report.splits:,}"
        + (", model trained" if report.model_trained else "")
    )

    def stages(background: bool) -> str:
        return ", ".join(
            f"{name} {s:.1f} s"
            for name, s in report.seconds.items()
            if (name in BACKGROUND_STAGES) == background
        )

    console.print(f"time: {stages(background=False)}")
    console.print(f"  alongside: {stages(background=True)}")


def register(app: typer.Typer) -> None:
    app.add_typer(identity_app, name="identity")


@identity_app.command("resolve")
def resolve_(
    ctx: typer.Context,
    tenant: TenantOption,
    engine: Annotated[
        str | None, typer.Option(help="duckdb or spark (default: transform.engine).")
    ] = None,
    retrain: Annotated[
        bool, typer.Option(help="Train the probabilistic model afresh on the current records.")
    ] = False,
) -> None:
    """Link the tenant's records into profiles (also run by `opencdp transform`)."""
    from opencdp.db import Database
    from opencdp.identity.recorded import resolve_recorded

    settings = settings_of(ctx)
    console = Console(stderr=True)
    report = resolve_recorded(
        settings,
        Database.from_settings(settings),
        tenant,
        engine=engine,
        retrain=retrain,
        progress=console.print,
    )
    print_resolution(report, console)


@identity_app.command("stats")
def stats_(
    ctx: typer.Context,
    tenant: TenantOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Profiles, merge rate, blocked identifiers and possible matches."""
    from opencdp.identity.inspect import identity_stats

    stats = identity_stats(settings_of(ctx), tenant)
    if as_json:
        typer.echo(json.dumps(stats, indent=2, default=str))
        return
    console = Console()
    console.print(
        f"{stats['records']:,} customer records in {stats['identified_profiles']:,} profiles "
        f"(merge rate {stats['merge_rate']:.1%}); {stats['device_profiles']:,} anonymous "
        f"device profiles"
    )
    sizes = ", ".join(f"{k} records: {v:,}" for k, v in stats["profile_sizes"].items())
    console.print(f"profile sizes: {sizes}")
    console.print(
        f"possible matches for review: {stats['possible_matches']:,}; refused matches: "
        f"{stats['refused_matches']:,}; merges {stats['merges']:,}, splits {stats['splits']:,}"
    )
    console.print(f"blocked identifiers: {stats['blocked']:,}")
    if stats["top_blocked"]:
        table = RichTable("type", "value", "records", "reason")
        for row in stats["top_blocked"]:
            table.add_row(row["id_type"], row["id_value"], f"{row['records']:,}", row["reason"])
        console.print(table)


@identity_app.command("explain")
def explain_(
    ctx: typer.Context,
    tenant: TenantOption,
    profile: Annotated[str, typer.Option(help="The profile id.")],
) -> None:
    """Why these records are one profile: its records, the links between them, the
    identifiers that were refused, possible matches and the profile's history."""
    from opencdp.identity.inspect import explain

    console = Console()
    doc = explain(settings_of(ctx), tenant, profile)
    console.print(f"profile {profile}: {len(doc['members'])} nodes")
    members = RichTable("node", "kind")
    for m in doc["members"]:
        members.add_row(m["node"], m["kind"])
    console.print(members)
    if doc["links"]:
        links = RichTable("left", "right", "rule", "evidence")
        for link in doc["links"]:
            links.add_row(link["left_node"], link["right_node"], link["rule"], link["why"])
        console.print(links)
    for title, rows in (
        ("refused identifiers", doc["blocked"]),
        ("possible matches", doc["possible"]),
        ("history", doc["history"]),
    ):
        if rows:
            console.print(f"{title}:")
            for row in rows:
                console.print("  " + ", ".join(f"{k}={v}" for k, v in row.items()))


@identity_app.command("unlink")
def unlink_(
    ctx: typer.Context,
    tenant: TenantOption,
    record: Annotated[
        list[str] | None,
        typer.Option(help="Two records to keep apart, as provider:source_id (give twice)."),
    ] = None,
    identifier: Annotated[
        str | None, typer.Option(help="An identifier that must link nothing, as type=value.")
    ] = None,
    reason: Annotated[str, typer.Option(help="Why (kept with the rule).")] = "",
) -> None:
    """Undo a wrong merge: keep two records apart, or block an identifier. The profile
    splits on the next resolution."""
    from opencdp.errors import ConfigError
    from opencdp.identity.rules import RuleBook
    from opencdp.storage.objectstore import store_for

    settings = settings_of(ctx)
    book = RuleBook(store_for(settings), tenant)
    now = datetime.now(UTC)
    console = Console(stderr=True)
    if identifier and not record:
        id_type, sep, id_value = identifier.partition("=")
        if not sep or not id_type or not id_value:
            raise ConfigError(
                f"--identifier takes type=value, got {identifier!r}",
                hint="e.g. --identifier email=family@example.com",
            )
        added = book.block(id_type, id_value, reason, now)
        what = f"{id_type} {id_value} is blocked"
    elif record and len(record) == 2 and not identifier:
        nodes = [_record_node(r) for r in record]
        added = book.keep_apart(nodes[0], nodes[1], reason, now)
        what = f"{record[0]} and {record[1]} are kept apart"
    else:
        raise ConfigError(
            "give two --record options or one --identifier",
            hint="e.g. --record crm:0031 --record shopify:7100 or --identifier email=x@y.com",
        )
    console.print(
        (what if added else f"already so: {what}")
        + f"; run `opencdp identity resolve --tenant {tenant}` to apply it"
    )


def _record_node(text: str) -> str:
    from opencdp.errors import ConfigError

    provider, sep, source_id = text.partition(":")
    if not sep or not provider or not source_id:
        raise ConfigError(
            f"--record takes provider:source_id, got {text!r}", hint="e.g. --record crm:0031"
        )
    return f"c:{provider}:{source_id}"


@identity_app.command("score")
def score_(
    ctx: typer.Context,
    tenant: TenantOption,
    truth: Annotated[
        Path | None,
        typer.Option(help="ground_truth.csv (default: generated/{tenant}/ground_truth.csv)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Score the profiles against a generated tenant's ground truth: pairwise precision,
    recall and F1, and exactly-right, over-merged and under-merged profiles."""
    from opencdp.identity.inspect import score_tenant

    settings = settings_of(ctx)
    path = truth or settings.root / "generated" / tenant / "ground_truth.csv"
    result = score_tenant(settings, tenant, path)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    print_score(result, Console())


def print_score(result: dict[str, object], console: Console) -> None:
    table = RichTable("measure", "value")
    for key, value in result.items():
        shown = f"{value:.4f}" if isinstance(value, float) else f"{value:,}"
        table.add_row(key.replace("_", " "), shown)
    console.print(table)
