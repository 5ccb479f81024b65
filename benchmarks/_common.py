"""What every benchmark shares: machine facts and writing results."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
RESULTS = HERE / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def python_loop_s() -> float:
    """Seconds for 10 million turns of a plain Python loop: how fast the machine is now.
    This machine's speed varies from day to day and within a day (0.87-1.11 s on one
    afternoon), so compare runs of a benchmark by their ratios or with this figure beside
    their seconds."""
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return round(time.perf_counter() - start, 3)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python_loop_10m_s": python_loop_s(),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {"benchmark": name, "date": datetime.now(UTC).isoformat(timespec="seconds"), **result}
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {path.relative_to(HERE.parent)}", file=sys.stderr)
    return path
