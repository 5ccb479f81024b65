"""The error hierarchy of OpenCDP.

Every error raised on purpose derives from `OpenCDPError` and belongs to one of two
families that retry logic reads: `TransientError` (worth retrying: a server that is
starting, a network blip, a lock held by another run) and `TerminalError` (retrying cannot
help: bad configuration, bad input, a missing table). Each error says what failed and, in
`hint`, how to fix it. HTTP status codes are chosen only at the API edge.
"""

from __future__ import annotations


class OpenCDPError(Exception):
    """Root of every error OpenCDP raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class TransientError(OpenCDPError):
    """The operation may succeed if retried later, unchanged."""

    retryable = True


class TerminalError(OpenCDPError):
    """Retrying the same operation cannot succeed; something must be changed first."""


# --- terminal ------------------------------------------------------------------------------


class ConfigError(TerminalError):
    """Settings, `opencdp.yaml` or a command-line option is invalid."""


class InvalidNameError(ConfigError):
    """A tenant, provider, stream or table name cannot be used safely in paths and SQL."""


class NotFoundError(TerminalError):
    """A tenant, table, file or record that was asked for does not exist."""


class AlreadyExistsError(TerminalError):
    """Something that must be created fresh exists already (raw files are never overwritten)."""


class MissingDependencyError(TerminalError):
    """An optional library needed by the configured backend is not installed."""

    def __init__(self, feature: str, package: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed",
            hint=f"install it with: uv sync --extra {extra}   (or: pip install 'opencdp[{extra}]')",
        )


class QueryError(TerminalError):
    """A user query was refused or failed."""


class MigrationError(TerminalError):
    """The serving database schema cannot be brought to the expected version."""


# --- transient -----------------------------------------------------------------------------


class StorageUnavailableError(TransientError):
    """The object store could not be reached or answered with a retryable failure."""


class DatabaseUnavailableError(TransientError):
    """The serving database could not be reached or started."""
