"""A small, real Singer tap for tests: counts from the bookmark to `total`.

Config: total (records), state_every, fail_at (exit 1 after emitting that record, for the
first `fail_times` runs, counted in `attempts_file`), sleep (seconds per record).
"""

import argparse
import json
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--config", required=True)
parser.add_argument("--state")
parser.add_argument("--catalog")
parser.add_argument("--discover", action="store_true")
args = parser.parse_args()
config = json.loads(Path(args.config).read_text())
schema = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "integer"}, "secret_seen": {"type": "boolean"}},
}
if args.discover:
    streams = [
        {"tap_stream_id": name, "stream": name, "schema": schema, "metadata": []}
        for name in ("items", "others")
    ]
    print(json.dumps({"streams": streams}))
    sys.exit(0)

selected = {"items"}
if args.catalog:
    catalog = json.loads(Path(args.catalog).read_text())
    selected = {
        s["tap_stream_id"]
        for s in catalog["streams"]
        if any(m["breadcrumb"] == [] and m["metadata"].get("selected") for m in s["metadata"])
    }

attempts_file = Path(config.get("attempts_file", "/dev/null"))
attempt = 1
if attempts_file.name != "null":
    attempt = int(attempts_file.read_text()) + 1 if attempts_file.exists() else 1
    attempts_file.write_text(str(attempt))

start = 0
if args.state:
    start = json.loads(Path(args.state).read_text())["bookmarks"]["items"]
total = config["total"]


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


for stream in sorted(selected):
    emit({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": ["id"]})
for i in range(start + 1, total + 1):
    for stream in sorted(selected):
        record = {"id": i, "secret_seen": config.get("token") == "s3cret"}
        emit({"type": "RECORD", "stream": stream, "record": record})
    if i % config.get("state_every", 10) == 0:
        emit({"type": "STATE", "value": {"bookmarks": {"items": i}}})
    if i == config.get("fail_at") and attempt <= config.get("fail_times", 1):
        print(f"simulated failure at record {i}", file=sys.stderr)
        sys.exit(1)
    time.sleep(config.get("sleep", 0))
emit({"type": "STATE", "value": {"bookmarks": {"items": total}}})
