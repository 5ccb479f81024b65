"""Running a tenant's Singer tap into the target: state, timeout, retries, alerts.

One extraction is up to 1 + max_retries attempts. Each attempt starts the tap with the
last durable state, so a retry resumes where the failed attempt stopped. A run that hits
its timeout is stopped cleanly (the tap is terminated, the target flushes and saves its
state) and resumes at the next run. After the last failed attempt the failure is kept in
the DLQ (error type `tap_failure`, with the tap's last stderr lines) and alerted.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from opencdp.alerts import Alerter
from opencdp.errors import ConfigError, NotFoundError
from opencdp.ingest.pipeline import ingest_lines
from opencdp.ingest.singer.state import StateStore
from opencdp.ingest.singer.target import IngestSummary
from opencdp.ingest.singer.venvs import tap_executable
from opencdp.ingest.taps import BUILTIN_TAPS
from opencdp.logs import get_logger
from opencdp.settings import Settings, SourceSettings, resolve_env_refs
from opencdp.storage import store_for
from opencdp.storage.ndjson import GzipLines
from opencdp.storage.rawzone import DeadLetterWriter, iso_utc

log = get_logger(__name__)

Status = Literal["success", "timeout", "failed"]
# Seconds between terminating a timed-out tap and killing it.
_GRACE = 10.0
_STDERR_TAIL = 40


@dataclass
class Attempt:
    exit_code: int | None
    timed_out: bool
    summary: IngestSummary
    stderr_tail: list[str]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.summary.ok


@dataclass
class ExtractResult:
    tenant: str
    source: str
    provider: str
    status: Status
    started_at: datetime
    ended_at: datetime
    attempts: list[Attempt] = field(default_factory=list)
    error: str | None = None

    @property
    def records(self) -> int:
        return sum(s.written for a in self.attempts for s in a.summary.streams.values())

    @property
    def rejected(self) -> int:
        return sum(s.rejected for a in self.attempts for s in a.summary.streams.values())


def source_of(settings: Settings, tenant: str, name: str) -> SourceSettings:
    sources = settings.tenant(tenant).sources
    if name not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise NotFoundError(
            f"tenant {tenant!r} has no source {name!r} (declared: {known})",
            hint=f"declare it under tenants.{tenant}.sources in {settings.config_path}",
        )
    source = sources[name]
    if source.kind != "tap" or not source.tap:
        raise ConfigError(
            f"source {name!r} of {tenant!r} is not a tap",
            hint="set `tap:` to builtin:<name>, command:<installed tap command> or a pip "
            "requirement such as tap-jsonl==0.3.1",
        )
    return source


def tap_command(settings: Settings, source: SourceSettings) -> list[str]:
    """The command that runs the tap: built in, an installed command, or from PyPI."""
    assert source.tap is not None
    if source.tap.startswith("command:"):
        return shlex.split(source.tap.removeprefix("command:"))
    if source.tap.startswith("builtin:"):
        name = source.tap.removeprefix("builtin:")
        if name not in BUILTIN_TAPS:
            raise ConfigError(
                f"unknown built-in tap {name!r}",
                hint=f"built-in taps: {', '.join(sorted(BUILTIN_TAPS))}",
            )
        return [sys.executable, "-m", BUILTIN_TAPS[name]]
    return [str(tap_executable(settings.root, source.tap, source.executable))]


def select_streams(catalog: dict[str, Any], selected: list[str]) -> dict[str, Any]:
    """Mark exactly `selected` streams as selected in a discovered catalog (pure)."""
    streams = catalog.get("streams") or []
    names = {s.get("tap_stream_id") or s.get("stream") for s in streams}
    unknown = sorted(set(selected) - names)
    if unknown:
        raise ConfigError(
            f"the tap offers no stream {', '.join(unknown)}",
            hint=f"streams offered: {', '.join(sorted(n for n in names if n))}",
        )
    for stream in streams:
        chosen = (stream.get("tap_stream_id") or stream.get("stream")) in selected
        metadata = stream.setdefault("metadata", [])
        top = next((m for m in metadata if m.get("breadcrumb") == []), None)
        if top is None:
            top = {"breadcrumb": [], "metadata": {}}
            metadata.append(top)
        top.setdefault("metadata", {})["selected"] = chosen
    return catalog


def extract(
    settings: Settings,
    tenant: str,
    source_name: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    backoff_base: float = 2.0,
    alerter: Alerter | None = None,
) -> ExtractResult:
    """Run one extraction of `source_name` with retries; never raises for tap failures."""
    source = source_of(settings, tenant, source_name)
    command = tap_command(settings, source)
    config = resolve_env_refs(source.config, dict(os.environ))
    result = ExtractResult(
        tenant=tenant,
        source=source_name,
        provider=source.provider,
        status="failed",
        started_at=datetime.now(UTC),
        ended_at=datetime.now(UTC),
    )
    state = StateStore(store_for(settings), tenant, source_name)
    with tempfile.TemporaryDirectory(prefix="opencdp-tap-") as tmp:
        work = Path(tmp)
        config_file = work / "config.json"
        config_file.write_text(json.dumps(config), encoding="utf-8")
        config_file.chmod(0o600)
        catalog = _catalog(command, config_file, source.select, work, settings.root)
        for number in range(source.max_retries + 1):
            if number:
                delay = backoff_base * 2 ** (number - 1)
                log.warning("tap_retry", source=source_name, attempt=number + 1, delay=delay)
                sleep(delay)
            attempt = _run_attempt(
                settings, tenant, source, source_name, command, config_file, catalog, state, work
            )
            result.attempts.append(attempt)
            if attempt.timed_out:
                result.status = "timeout"
                break
            if attempt.ok:
                result.status = "success"
                break
            result.error = _describe_failure(attempt)
    result.ended_at = datetime.now(UTC)
    if result.status == "failed":
        _keep_failure(settings, result)
        (alerter or Alerter(settings.alerts)).send(
            f"extraction of {tenant}/{source_name} failed after {len(result.attempts)} attempts",
            {"error": result.error or "unknown", "records_landed": result.records},
        )
    return result


def _catalog(
    command: list[str], config: Path, select: list[str], work: Path, cwd: Path
) -> Path | None:
    if not select:
        return None
    discovered = subprocess.run(  # noqa: S603 - the tap command comes from the operator's config
        [*command, "--config", str(config), "--discover"],
        capture_output=True,
        check=False,
        cwd=cwd,
    )
    if discovered.returncode != 0:
        raise ConfigError(
            f"tap discovery failed: {discovered.stderr.decode(errors='replace')[-500:]}",
            hint="run the tap with --discover by hand to see why",
        )
    catalog = select_streams(orjson.loads(discovered.stdout), select)
    path = work / "catalog.json"
    path.write_bytes(orjson.dumps(catalog))
    return path


def _run_attempt(
    settings: Settings,
    tenant: str,
    source: SourceSettings,
    source_name: str,
    command: list[str],
    config: Path,
    catalog: Path | None,
    state: StateStore,
    work: Path,
) -> Attempt:
    argv = [*command, "--config", str(config)]
    if catalog is not None:
        argv += ["--catalog", str(catalog)]
    last_state = state.load()
    if last_state is not None:
        state_file = work / "state.json"
        state_file.write_bytes(orjson.dumps(last_state))
        argv += ["--state", str(state_file)]
    log.info("tap_start", tenant=tenant, source=source_name, resumed=last_state is not None)
    # Taps run in the data root: relative paths in their config are relative to it.
    process = subprocess.Popen(  # noqa: S603 - the tap command comes from the operator's config
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=settings.root
    )
    assert process.stdout is not None
    assert process.stderr is not None
    tail: deque[str] = deque(maxlen=_STDERR_TAIL)
    reader = threading.Thread(target=_drain, args=(process.stderr, tail), daemon=True)
    reader.start()
    timed_out = threading.Event()
    watchdog = threading.Timer(source.timeout_seconds, _stop, args=(process, timed_out))
    watchdog.start()
    try:
        summary = ingest_lines(
            settings,
            tenant=tenant,
            provider=source.provider,
            lines=process.stdout,
            source=source_name,
            drift_policy=source.drift_policy,
        )
    finally:
        watchdog.cancel()
        if process.poll() is None and not timed_out.is_set():
            process.kill()  # the target failed: don't leave the tap running
        exit_code = process.wait()
        reader.join(timeout=5)
    return Attempt(
        exit_code=exit_code, timed_out=timed_out.is_set(), summary=summary, stderr_tail=list(tail)
    )


def _drain(stream: IO[bytes], tail: deque[str]) -> None:
    for line in stream:
        text = line.decode("utf-8", errors="replace").rstrip()
        tail.append(text)
        log.debug("tap_stderr", line=text)


def _stop(process: subprocess.Popen[bytes], timed_out: threading.Event) -> None:
    timed_out.set()
    log.warning("tap_timeout", pid=process.pid)
    process.terminate()
    try:
        process.wait(timeout=_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()


def _describe_failure(attempt: Attempt) -> str:
    if attempt.exit_code != 0:
        last = attempt.stderr_tail[-1] if attempt.stderr_tail else "no output"
        return f"tap exited with code {attempt.exit_code}: {last}"
    return f"{attempt.summary.protocol_errors} Singer protocol errors (see the DLQ)"


def _keep_failure(settings: Settings, result: ExtractResult) -> None:
    now = datetime.now(UTC)
    stamp = iso_utc(now)
    lines = GzipLines()
    lines.add_json(
        {
            "_meta": {
                "tenant": result.tenant,
                "provider": result.provider,
                "stream": None,
                "kind": "tap",
                "id": f"{result.source}@{result.started_at.isoformat()}",
                "received_at": stamp,
                "extracted_at": None,
                "batch_id": None,
                "schema_version": None,
                "event_type": None,
            },
            "record": {
                "source": result.source,
                "attempts": [
                    {"exit_code": a.exit_code, "stderr_tail": a.stderr_tail}
                    for a in result.attempts
                ],
            },
            "error": {
                "type": "tap_failure",
                "reason": result.error,
                "field": None,
                "at": stamp,
                "retry_count": len(result.attempts) - 1,
            },
        }
    )
    DeadLetterWriter(store_for(settings), result.tenant, result.provider).commit(
        "tap_failure", lines.finish(), now
    )
