"""Signed-webhook intake: `opencdp collect serve` beside a bare ASGI app, both under wrk.

Both run on granian with the same workers and settings (`GRANIAN_SETTINGS` of the
service's server module) and are loaded the same way (wrk, 1 thread, on the same 2 cores),
with unique pre-signed 1 KB requests: the bare app verifies the HMAC and appends to a file
without fsync (benchmarks/collect/bare_app.py); the service also routes, checks,
deduplicates and answers only once the event is fsync'd (group commit). An fsync probe in
the same run shows the disk's speed at the time; the bare app's appends are written back
(sync) before the service is measured. A shared virtual machine's speed drifts by tens of
percent within minutes, so the two are measured in alternating rounds and compared round
by round; the medians are the result.

    uv run python benchmarks/bench_collect.py [--connections 256] [--seconds 10] [--workers 2]
        [--rounds 3]

Targets (issue 4): >= 8,500 durably acknowledged events/s with p99 <= 50 ms at 256
connections, and >= 0.5x the bare app's rate. Results: benchmarks/results/collect.json.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from _common import HERE, WORK, machine, write_result
from opencdp.collect.probe import free_port, wait_healthy
from opencdp.collect.server import GRANIAN_SETTINGS

SECRET = "bench-secret"
REQUESTS = 200_000
WARM_UP_REQUESTS = 50_000  # more than a 2 s warm-up sends
OPENCDP = Path(sys.executable).parent / "opencdp"


def wait_up(port: int) -> None:
    if not wait_healthy(port):
        raise RuntimeError(f"nothing listens on port {port}")


def signed_requests(path: Path, count: int) -> None:
    padding = "x" * 900
    with path.open("w", encoding="utf-8") as f:
        for n in range(count):
            body = json.dumps({"id": n, "event": "order.created", "padding": padding})
            digest = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
            f.write(f"sha256={digest}\t{body}\n")


def wrk(
    port: int, path: str, requests: Path, connections: int, seconds: int, start: int = 0
) -> dict[str, Any]:
    script = HERE / "collect" / "replay.lua"
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(requests),
            path,
            str(start),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {
        p: _ms(re.search(rf"^\s+{p}%\s+([\d.]+\w+)", out, re.M).group(1))  # type: ignore[union-attr]
        for p in ("50", "99")
    }
    return {
        "requests_per_s": round(rate),
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return round(float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)


def fsync_probe(folder: Path, seconds: float = 2.0) -> float:
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        os.write(fd, b"x" * 1024)
        os.fsync(fd)
        count += 1
    os.close(fd)
    path.unlink()
    return count / seconds


def run_bare(port: int, workers: int, spool: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BENCH_SECRET": SECRET,
        "BENCH_SPOOL": str(spool),
        "PYTHONPATH": str(HERE / "collect"),
    }
    settings = [
        arg
        for name, value in GRANIAN_SETTINGS.items()
        for arg in (f"--{name.replace('_', '-')}", str(value))
    ]
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "granian"),
            *settings,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "bare_app:app",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run_service(root: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    config = {
        "log_level": "warning",
        "collect": {"rate_limit_per_second": 1e9, "rate_limit_burst": 10**9},
        "tenants": {
            "bench": {
                "sources": {
                    "hooks": {
                        "provider": "bench",
                        "kind": "webhook",
                        "webhook": {"scheme": "hmac", "secrets": [SECRET]},
                    }
                }
            }
        },
    }
    (root / "opencdp.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCDP_")}
    return subprocess.Popen(
        [
            str(OPENCDP),
            "--root",
            str(root),
            "collect",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def measure_bare(work: Path, requests: Path, args: argparse.Namespace) -> dict[str, Any]:
    spool = work / "spool"
    spool.mkdir(exist_ok=True)
    port = free_port()
    bare = run_bare(port, args.workers, spool)
    try:
        wait_up(port)
        wrk(port, "/hook", requests, args.connections, 2)  # warm-up
        return wrk(port, "/hook", requests, args.connections, args.seconds, WARM_UP_REQUESTS)
    finally:
        stop(bare)
        # Its appends (~150 MB a round, never fsync'd) would otherwise be written back
        # during the service's run and stall the service's fsyncs.
        shutil.rmtree(spool)
        os.sync()


def measure_service(root: Path, requests: Path, args: argparse.Namespace) -> dict[str, Any]:
    shutil.rmtree(root, ignore_errors=True)  # every round starts from an empty queue
    root.mkdir()
    port = free_port()
    service = run_service(root, port, args.workers)
    try:
        wait_up(port)
        path = "/webhooks/bench/hooks"
        wrk(port, path, requests, args.connections, 2)
        # Past the warm-up's requests: a repeat would be answered as a duplicate, unqueued.
        return wrk(port, path, requests, args.connections, args.seconds, WARM_UP_REQUESTS)
    finally:
        stop(service)


def median_of(rounds: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return {
        field: statistics.median(r[key][field] for r in rounds)
        for field in ("requests_per_s", "p50_ms", "p99_ms")
    } | {"non_2xx": sum(r[key]["non_2xx"] for r in rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    at_start = machine()  # the load average before this run adds its own
    work = WORK / "collect"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    requests = work / "requests.tsv"
    signed_requests(requests, REQUESTS)
    os.sync()  # the requests file is not written back during the first measurement
    fsyncs = fsync_probe(work)

    rounds = []
    for _ in range(args.rounds):
        bare = measure_bare(work, requests, args)
        service = measure_service(work / "root", requests, args)
        ratio = round(service["requests_per_s"] / bare["requests_per_s"], 2)
        rounds.append({"bare": bare, "service": service, "ratio": ratio})
        print(json.dumps(rounds[-1]), file=sys.stderr)

    result = {
        "server": "granian (ASGI)",
        "workers": args.workers,
        "granian": GRANIAN_SETTINGS,
        "connections": args.connections,
        "seconds": args.seconds,
        "body_bytes": 1024,
        "fsync_probe_per_s": round(fsyncs),
        "bare_app_non_durable": median_of(rounds, "bare"),
        "collect_service_durable": median_of(rounds, "service"),
        "ratio_to_bare": statistics.median(r["ratio"] for r in rounds),
        "rounds": rounds,
        "machine": at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    write_result("collect", result)


if __name__ == "__main__":
    main()
