"""`opencdp generate` end to end, through typer's CliRunner and once as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opencdp.cli import main as cli

pytestmark = pytest.mark.integration


def run(root: Path, *args: str) -> tuple[int, str, str]:
    if not any(command.name == "generate" for command in cli.app.registered_commands):
        cli._register()
    result = CliRunner().invoke(cli.app, ["--root", str(root), "generate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_generates_a_tenant_with_its_ground_truth(tmp_path: Path, clean_env: None) -> None:
    out = tmp_path / "acme"
    code, stdout, _ = run(
        tmp_path, "--tenant", "acme", "--people", "400", "--seed", "5", "--out", str(out),
        "--mix", "crm=0.8,events=0.5", "--rates", "nickname=1",
    )  # fmt: skip
    assert code == 0, stdout
    assert "tenant acme: 400 people" in stdout
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["mix"] == {"crm": 0.8, "shopify": 0.5, "stripe": 0.35, "events": 0.5}
    assert manifest["rates"]["nickname"] == 1.0
    stats = manifest["variations"]["nickname"]
    assert stats["applied"] == stats["eligible"] > 0
    assert (
        (out / "ground_truth.csv")
        .read_text("utf-8")
        .startswith("source,stream,record_id,person_id,variations\n")
    )
    for path, count in manifest["files"].items():
        assert (out / path).is_file()
        assert f"{count:>10}  {out / path}" in stdout


def test_default_output_is_under_the_data_root(tmp_path: Path, clean_env: None) -> None:
    code, stdout, _ = run(tmp_path, "--people", "50", "--tenant", "shop_one")
    assert code == 0, stdout
    assert (tmp_path / "generated" / "shop_one" / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--people", "0"], "--people must be a positive number"),
        (["--people", "-3"], "--people must be a positive number"),
        (["--mix", "crm=1.2"], "is not between 0 and 1"),
        (["--mix", "hubspot=0.5"], "unknown source mix name 'hubspot'"),
        (["--mix", "crm=0.1,shopify=0.1,stripe=0.1,events=0.1"], "must add up to more than 1"),
        (["--rates", "nickname=x"], "is not a number"),
        (["--tenant", "Acme-Corp"], "invalid tenant name"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_error(
    tmp_path: Path, clean_env: None, args: list[str], message: str
) -> None:
    code, _, stderr = run(tmp_path, "--out", str(tmp_path / "out"), *args)
    assert code == 2
    assert message in stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_refuses_a_non_empty_folder_unless_forced(tmp_path: Path, clean_env: None) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", "utf-8")
    code, _, stderr = run(tmp_path, "--people", "20", "--out", str(out))
    assert code == 2
    assert "is not empty" in stderr
    assert "--force" in stderr
    code, stdout, _ = run(tmp_path, "--people", "20", "--out", str(out), "--force")
    assert code == 0, stdout
    assert (out / "manifest.json").is_file()
    assert (out / "notes.txt").read_text("utf-8") == "keep me"


def test_an_unwritable_output_folder_is_a_clear_error(tmp_path: Path, clean_env: None) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", "utf-8")
    code, _, stderr = run(tmp_path, "--people", "20", "--out", str(blocker / "out"))
    assert code == 2
    assert "cannot create the output folder" in stderr
    code, _, stderr = run(tmp_path, "--people", "20", "--out", str(blocker))
    assert code == 2
    assert "is a file, not a folder" in stderr


@pytest.mark.slow
def test_console_script_is_reproducible(tmp_path: Path, clean_env: None) -> None:
    def generate(out: Path) -> bytes:
        subprocess.run(
            [sys.executable, "-m", "opencdp.cli.main", "--root", str(tmp_path), "generate",
             "--people", "300", "--seed", "8", "--out", str(out)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        return b"".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file())

    assert generate(tmp_path / "one") == generate(tmp_path / "two")
