"""`opencdp generate`: write a synthetic multi-source tenant with its ground truth."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from opencdp.cli.context import settings_of
from opencdp.generate import GenerateConfig, generate_tenant, parse_mix, parse_rates
from opencdp.generate.config import DEFAULT_AS_OF, format_mix

# Below this many people a run takes seconds: no progress bar unless stderr is a terminal.
PROGRESS_FROM = 100_000


@contextmanager
def _progress(people: int) -> Iterator[Callable[[int], None] | None]:
    if people < PROGRESS_FROM and not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("people", total=people)
        yield lambda done: bar.update(task, completed=done)


def register(app: typer.Typer) -> None:
    @app.command("generate")
    def generate(
        ctx: typer.Context,
        tenant: Annotated[str, typer.Option(help="Tenant name (a-z, 0-9, _).")] = "demo",
        people: Annotated[int, typer.Option(help="How many people to generate.")] = 1_000,
        seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 42,
        out: Annotated[
            Path | None,
            typer.Option(
                help="Output folder (default: {root}/generated/{tenant}).", show_default=False
            ),
        ] = None,
        mix: Annotated[
            str | None,
            typer.Option(
                help="Share of people in each source, e.g. crm=0.6,shopify=0.5,stripe=0.35,"
                "events=0.7 (sources not named keep these defaults).",
                show_default=False,
            ),
        ] = None,
        rates: Annotated[
            str | None,
            typer.Option(
                help="Variation rates, e.g. nickname=0.5,missing=0 (see manifest.json for "
                "every kind and its default).",
                show_default=False,
            ),
        ] = None,
        as_of: Annotated[
            datetime,
            typer.Option(formats=["%Y-%m-%d"], help="Last day of the generated history."),
        ] = datetime(DEFAULT_AS_OF.year, DEFAULT_AS_OF.month, DEFAULT_AS_OF.day),
        force: Annotated[
            bool, typer.Option(help="Write into a non-empty folder, replacing generated files.")
        ] = False,
    ) -> None:
        """Generate a tenant: CRM CSVs, Shopify, Stripe and Segment JSON lines, ground truth."""
        config = GenerateConfig(
            tenant=tenant,
            people=people,
            seed=seed,
            mix=parse_mix(mix),
            rates=parse_rates(rates),
            as_of=as_of.date(),
        )
        target = out if out is not None else settings_of(ctx).root / "generated" / tenant
        with _progress(people) as on_progress:
            manifest = generate_tenant(config, target, force=force, on_progress=on_progress)
        typer.echo(
            f"tenant {tenant}: {manifest['people']} people, {manifest['records']} records "
            f"(seed {seed}, mix {format_mix(config.mix)})"
        )
        for path, count in manifest["files"].items():
            typer.echo(f"  {count:>10}  {target / path}")
        typer.echo(f"  ground truth: {target / manifest['ground_truth']}")
        typer.echo(f"  manifest:     {target / 'manifest.json'}")
