"""`opencdp dlq` and `opencdp schemas` end to end through the CLI."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from opencdp.cli.main import EXIT_TERMINAL, _register, app
from opencdp.storage.ndjson import read_lines

pytestmark = pytest.mark.integration

STREAMS = resources.files("singer_sdk.testing") / "target_test_streams"


@pytest.fixture
def cli(data_root: Path, clean_env: None):  # type: ignore[no-untyped-def]
    _register()
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["--root", str(data_root), *args])
        return result.exit_code, result.output

    return run


def ingest(cli, name: str) -> None:  # type: ignore[no-untyped-def]
    path = str(STREAMS / f"{name}.singer")
    cli("ingest", "--tenant", "acme", "--provider", "sdk", "--input", path)


def raw_ids(root: Path, stream: str) -> list[object]:
    return [
        doc["record"].get("id")
        for path in sorted((root / "raw").rglob(f"{stream}_batch_*.ndjson.gz"))
        for doc in read_lines(path.read_bytes())
    ]


def test_list_and_show(cli, data_root: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(cli, "record_missing_required_property")
    ingest(cli, "record_missing_key_property")
    code, out = cli("dlq", "list", "--tenant", "acme")
    assert code == 0
    assert "validation" in out
    assert "missing_key_property" in out
    code, out = cli("dlq", "show", "--tenant", "acme", "--provider", "sdk", "--format", "jsonl")
    docs = [orjson.loads(line) for line in out.splitlines()]
    assert {d["error"]["type"] for d in docs} == {"validation", "missing_key_property"}
    assert all(d["_dlq_ref"].startswith("dlq/acme/sdk/") for d in docs)


def test_reprocess_with_an_edit_lands_the_fixed_record(
    cli, data_root: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ingest(cli, "record_missing_required_property")
    ingest(cli, "record_missing_key_property")
    _, out = cli("dlq", "show", "--tenant", "acme", "--provider", "sdk", "--format", "jsonl")
    edits = tmp_path / "edits.jsonl"
    fixed = []
    for line in out.splitlines():
        doc = orjson.loads(line)
        if doc["error"]["type"] == "validation":
            doc["record"]["id"] = 42
            fixed.append(orjson.dumps(doc))
    edits.write_bytes(b"\n".join(fixed))

    code, out = cli(
        "dlq", "reprocess", "--tenant", "acme", "--provider", "sdk", "--edits", str(edits)
    )
    assert code == 0, out
    assert "reprocessed 2 records: 1 now pass" in out
    assert "still failing (missing_key_property): 1" in out
    assert raw_ids(data_root, "test_record_missing_required_property") == [42]
    # The unfixed record is back in the DLQ, once, with its retry count raised.
    _, out = cli("dlq", "show", "--tenant", "acme", "--provider", "sdk", "--format", "jsonl")
    [left] = [orjson.loads(line) for line in out.splitlines()]
    assert left["error"]["type"] == "missing_key_property"
    assert left["error"]["retry_count"] == 1


def test_a_record_before_its_schema_passes_once_the_schema_is_known(cli, data_root: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(cli, "record_before_schema")
    code, out = cli(
        "dlq",
        "reprocess",
        "--tenant",
        "acme",
        "--provider",
        "sdk",
        "--error-type",
        "missing_schema",
    )
    assert code == 0, out
    assert "1 now pass" in out
    assert sorted(raw_ids(data_root, "test_record_before_schema")) == [1, 2]
    _, out = cli("dlq", "list", "--tenant", "acme")
    assert "is empty" in out


def test_bad_edits_file_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest(cli, "record_missing_required_property")
    edits = tmp_path / "edits.jsonl"
    edits.write_text('{"record": {"id": 1}}\n')
    code, out = cli(
        "dlq", "reprocess", "--tenant", "acme", "--provider", "sdk", "--edits", str(edits)
    )
    assert code == EXIT_TERMINAL
    assert "_dlq_ref" in out


def test_schemas_list_show_diff(cli) -> None:  # type: ignore[no-untyped-def]
    ingest(cli, "schema_updates")
    code, out = cli("schemas", "list", "--tenant", "acme", "--provider", "sdk")
    assert code == 0
    assert "test_schema_updates" in out
    code, out = cli(
        "schemas",
        "show",
        "--tenant",
        "acme",
        "--provider",
        "sdk",
        "--stream",
        "test_schema_updates",
        "--version",
        "1",
    )
    assert code == 0
    assert orjson.loads(out)["schema"]["properties"].keys() == {"id", "a1", "a2"}
    code, out = cli(
        "schemas",
        "diff",
        "--tenant",
        "acme",
        "--provider",
        "sdk",
        "--stream",
        "test_schema_updates",
        "--from",
        "1",
        "--to",
        "2",
    )
    assert "+ a3 (new field)" in out
    assert "backward compatible" in out
    code, out = cli("schemas", "show", "--tenant", "acme", "--provider", "sdk", "--stream", "nope")
    assert code == EXIT_TERMINAL
    assert "no schema registered" in out
