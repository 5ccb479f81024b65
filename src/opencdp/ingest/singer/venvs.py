"""Virtual environments for taps from PyPI: one per requirement, created on first use.

Taps pin conflicting versions of the same libraries, so each requirement gets its own
environment under {root}/state/venvs/. Creation is guarded by a file lock (two runs of
one tap never install at once) and finished by a marker file (a half-built environment
is rebuilt, never used).
"""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from opencdp.errors import ConfigError, TransientError
from opencdp.logs import get_logger

log = get_logger(__name__)
_MARKER = ".opencdp-installed"


def venv_dir(root: Path, requirement: str) -> Path:
    digest = hashlib.sha256(requirement.encode()).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "-", requirement.lower()).strip("-")[:40]
    return root / "state" / "venvs" / f"{slug}-{digest}"


def project_name(requirement: str) -> str:
    try:
        return Requirement(requirement).name
    except InvalidRequirement as e:
        raise ConfigError(
            f"invalid tap requirement {requirement!r}: {e}",
            hint="use a pip requirement such as 'tap-jsonl==0.3.1' or 'builtin:files'",
        ) from e


def tap_executable(root: Path, requirement: str, executable: str | None = None) -> Path:
    """The tap's command, installing `requirement` into its own environment if needed."""
    command = executable or project_name(requirement)
    venv = venv_dir(root, requirement)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / _MARKER).exists():
            _install(venv, requirement)
    path = venv / "bin" / command
    if not path.exists():
        raise ConfigError(
            f"{requirement!r} installed no command {command!r}",
            hint=f"set 'executable' for this source; commands found: {_commands(venv)}",
        )
    return path


def _install(venv: Path, requirement: str) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    log.info("installing_tap", requirement=requirement, venv=str(venv))
    # uv is a dependency of OpenCDP (next to this Python), and much faster than pip.
    sibling = Path(sys.executable).parent / "uv"
    uv = str(sibling) if sibling.exists() else shutil.which("uv")
    if uv:
        steps = [
            [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                requirement,
            ],
        ]
    else:
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise TransientError(
                f"could not install tap {requirement!r}: {result.stderr.strip()[-800:]}",
                hint="check the requirement and that the package index is reachable",
            )
    (venv / _MARKER).write_text(requirement, encoding="utf-8")


def _commands(venv: Path) -> str:
    names = sorted(p.name for p in (venv / "bin").glob("tap*"))
    return ", ".join(names) or "none"
