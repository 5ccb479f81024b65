"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opencdp.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _away_from_the_checkout(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test runs in an empty folder, so that a data root made in the checkout
    (./cdp-data, by `make demo`) is never a test's default root."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """An empty data root in a temporary folder."""
    root = tmp_path / "cdp-data"
    root.mkdir()
    return root


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OPENCDP_* variables from the caller's shell leak into a test's settings."""
    for key in list(os.environ):
        if key.startswith("OPENCDP_") and key != "OPENCDP_TEST_DATABASE_URL":
            monkeypatch.delenv(key)


@pytest.fixture
def settings(data_root: Path, clean_env: None) -> Settings:
    """Settings for a fresh data root with every embedded default."""
    return load_settings(data_root)
