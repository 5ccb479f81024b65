"""Errors, names and log redaction: the small pieces everything else leans on."""

from __future__ import annotations

import json

import pytest
import structlog

from opencdp.errors import (
    ConfigError,
    DatabaseUnavailableError,
    MissingDependencyError,
    OpenCDPError,
    TerminalError,
    TransientError,
)
from opencdp.logs import configure_logging, redact_text
from opencdp.names import check_name


def test_error_families_tell_retry_logic_what_to_do() -> None:
    assert DatabaseUnavailableError("x").retryable
    assert isinstance(DatabaseUnavailableError("x"), TransientError)
    assert not ConfigError("x").retryable
    assert isinstance(ConfigError("x"), TerminalError)
    assert issubclass(TransientError, OpenCDPError)


def test_error_text_carries_the_hint() -> None:
    assert str(ConfigError("bad", hint="fix it")) == "bad\n  hint: fix it"
    assert str(ConfigError("bad")) == "bad"
    missing = MissingDependencyError("the s3:// object store", "s3fs", "s3")
    assert "s3fs" in str(missing)
    assert "uv sync --extra s3" in str(missing)


@pytest.mark.parametrize("name", ["acme", "acme_corp", "a1", "x" * 48])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Acme", "1acme", "ac-me", "ac me", "../x", "x" * 49, "é"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid tenant name"):
        check_name(name)


def test_url_passwords_are_redacted() -> None:
    text = "cannot reach postgresql://app:s3cret@db:5432/x and s3://k:v@bucket"
    assert redact_text(text) == "cannot reach postgresql://app:***@db:5432/x and s3://k:***@bucket"
    assert redact_text("postgresql://app@db/x") == "postgresql://app@db/x"


def test_log_lines_hide_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    structlog.get_logger("t").info(
        "connect", url="postgresql://u:pw123@h/db", api_key="k-123", password="p", rows=3
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["url"] == "postgresql://u:***@h/db"
    assert line["api_key"] == "***"
    assert line["password"] == "***"
    assert line["rows"] == 3
    assert line["level"] == "info"
