"""Typed settings, built once where the program starts and passed down.

Sources, highest priority first: values given by the caller (CLI options), environment
variables (`OPENCDP_` prefix, `__` between nested fields: `OPENCDP_DATABASE__URL`), then
`{root}/opencdp.yaml`, then the defaults below. Nothing here runs at import time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from opencdp.errors import ConfigError, InvalidNameError
from opencdp.names import check_name

CONFIG_FILE = "opencdp.yaml"
DEFAULT_ROOT = Path("cdp-data")
_INDEX_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Section):
    """Where raw files, the DLQ, the Iceberg warehouse and audiences live."""

    # None: the data root itself. Otherwise any fsspec URL, e.g. s3://bucket/prefix.
    url: str | None = None
    # Passed to the fsspec filesystem (endpoint_url, key, secret, ...).
    options: dict[str, Any] = Field(default_factory=dict)


class CatalogSettings(_Section):
    """The Iceberg catalog. Empty properties: a SQLite catalog file in the data root."""

    name: str = "opencdp"
    # Any PyIceberg catalog properties: {"type": "rest", "uri": ...}, {"type": "glue"}, ...
    properties: dict[str, str] = Field(default_factory=dict)


class DatabaseSettings(_Section):
    """The serving PostgreSQL database. No URL: the embedded server under the data root.
    A URL (postgresql://user@host/db) or a libpq string (host=... dbname=...)."""

    url: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _postgres_only(cls, url: SecretStr | None) -> SecretStr | None:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        if url is not None:
            try:
                conninfo_to_dict(url.get_secret_value())
            except ProgrammingError:
                # The message is not passed on: it may quote the password.
                raise ValueError(
                    "database.url must be a postgresql:// URL or a libpq connection string"
                ) from None
        return url


class WebhookSettings(_Section):
    """How a webhook source's requests are verified and limited."""

    # shopify | stripe | standard (Standard Webhooks) | hmac (X-Hub-Signature-256 style) | jwt
    scheme: Literal["shopify", "stripe", "standard", "hmac", "jwt"]
    # Signing secrets, newest first during a rotation; "env:NAME" reads the environment.
    secrets: list[str] = Field(default_factory=list)
    # PEM public keys (or "env:NAME") for RS256 JWTs.
    public_keys: list[str] = Field(default_factory=list)
    # hmac scheme only: the signature header, and headers naming the event id and type
    # (GitHub: X-GitHub-Delivery, X-GitHub-Event).
    signature_header: str = "X-Hub-Signature-256"
    id_header: str | None = None
    type_header: str | None = None
    tolerance_seconds: float = Field(default=300, gt=0)
    audience: str | None = None  # jwt scheme only
    issuer: str | None = None  # jwt scheme only
    # CIDR blocks allowed to call (empty: anyone); e.g. the provider's published ranges.
    allowed_ips: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1 << 20, ge=1)


class SourceSettings(_Section):
    """One data source of a tenant: a Singer tap (built in or from PyPI), a webhook or a
    tracking-API key."""

    provider: str
    kind: Literal["tap", "webhook", "tracking"] = "tap"
    # "builtin:files" (also shopify, stripe), "command:<an installed tap's command line>",
    # or a pip requirement such as "tap-jsonl==0.3.1" (installed into a virtual
    # environment of its own under the data root).
    tap: str | None = None
    # The tap's command; default: the requirement's project name (tap-jsonl).
    executable: str | None = None
    # The tap's --config. Secrets belong in the environment: a string value
    # "env:NAME" is replaced by the variable NAME when the tap starts.
    config: dict[str, Any] = Field(default_factory=dict)
    # Streams to extract (by catalog selection); empty: every stream the tap offers.
    select: list[str] = Field(default_factory=list)
    schedule: str | None = None
    timeout_seconds: float = Field(default=1800, gt=0)
    max_retries: int = Field(default=3, ge=0)
    drift_policy: Literal["warn", "dlq"] = "warn"
    # kind: webhook — verification and limits.
    webhook: WebhookSettings | None = None
    # kind: tracking — the Segment-style write keys that map to this source ("env:NAME").
    write_keys: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _kind_needs(self) -> SourceSettings:
        if self.kind == "webhook" and self.webhook is None:
            raise ValueError("a webhook source needs a `webhook:` section (scheme, secrets)")
        if self.kind == "tracking" and not self.write_keys:
            raise ValueError("a tracking source needs `write_keys`")
        return self

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str | None) -> str | None:
        return _check_cron(schedule)

    @field_validator("provider")
    @classmethod
    def _provider_name(cls, provider: str) -> str:
        try:
            return check_name(provider, "provider")
        except InvalidNameError as e:
            raise ValueError(str(e)) from e


class CollectSettings(_Section):
    """The real-time collection service (`opencdp collect serve`) and its batcher."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    # None: the durable on-disk queue under {root}/state/queue; or an SQS queue
    # (sqs://queue-name or its https URL), with boto3 options in queue_options.
    queue_url: str | None = None
    queue_options: dict[str, Any] = Field(default_factory=dict)
    # Per tenant and worker: sustained requests per second, and the burst above it.
    rate_limit_per_second: float = Field(default=2000, gt=0)
    rate_limit_burst: int = Field(default=4000, ge=1)
    # How long a webhook id or messageId is remembered to drop replays and duplicates.
    dedup_window_seconds: float = Field(default=86_400, gt=0)
    batch_max_events: int = Field(default=20_000, ge=1)
    batch_max_seconds: float = Field(default=300, gt=0)


class SearchSettings(_Section):
    """The profile search index: Tantivy in the data root (nothing to run), or an
    OpenSearch cluster with one index alias per tenant, `{index_prefix}-profiles-{tenant}`."""

    backend: Literal["tantivy", "opensearch"] = "tantivy"
    # opensearch: the cluster's URL, e.g. https://search.internal:9200. It may carry
    # user:password@, but a password belongs in the environment:
    # OPENCDP_SERVE__SEARCH__USERNAME and OPENCDP_SERVE__SEARCH__PASSWORD.
    url: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    # Several installations can share a cluster under different prefixes.
    index_prefix: str = "opencdp"
    verify_certs: bool = True
    ca_certs: Path | None = None  # a CA bundle, for a cluster with a private authority
    timeout_seconds: float = Field(default=30, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None:
            try:  # .port raises ValueError for a port that is not a number
                parts = urlsplit(url.get_secret_value())
                valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
                valid = valid and parts.port != 0
            except ValueError:
                valid = False
            if not valid:  # the URL is not repeated: it may hold a password
                raise ValueError("serve.search.url must be an http:// or https:// URL")
        return url

    @field_validator("index_prefix")
    @classmethod
    def _index_name(cls, prefix: str) -> str:
        if not _INDEX_PREFIX.fullmatch(prefix):
            raise ValueError(
                "serve.search.index_prefix uses a-z, 0-9, - and _, starts with a letter or a "
                "digit, at most 64 chars (OpenSearch index names are lower case)"
            )
        return prefix

    @model_validator(mode="after")
    def _backend_needs(self) -> SearchSettings:
        if self.backend == "opensearch" and self.url is None:
            raise ValueError("the opensearch search backend needs serve.search.url")
        return self


class ServeSettings(_Section):
    """The serving API (`opencdp serve`) and what feeds it (`opencdp load`)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=2, ge=1)
    # How long a verified API key is trusted before it is checked again (revocation and
    # expiry take effect within this time); 0 checks every request.
    key_cache_seconds: float = Field(default=5, ge=0)
    # Connections per tenant and worker in the API's pools.
    pool_size: int = Field(default=8, ge=1)
    # Profile accesses are buffered and written to the audit log at least this often.
    audit_flush_seconds: float = Field(default=1, gt=0)
    search: SearchSettings = SearchSettings()


class AlertSettings(_Section):
    """Where alerts go besides the log: a Slack-compatible incoming-webhook URL."""

    webhook_url: SecretStr | None = None
    dlq_threshold: int = Field(default=1000, ge=1)


class TransformSettings(_Section):
    """The transform: raw zone → curated Iceberg tables."""

    engine: Literal["duckdb", "spark"] = "duckdb"
    # Worker processes for the row-local stages and DuckDB threads (None: every core).
    workers: int | None = Field(default=None, ge=1)
    # Spark only: the master URL (a cluster's, or local[*]) and extra Spark configuration.
    spark_master: str = "local[*]"
    spark_conf: dict[str, str] = Field(default_factory=dict)
    target_file_size_bytes: int = Field(default=128 * 1024 * 1024, ge=1024 * 1024)
    # A column whose share of valid values (of those the source gave) falls below this
    # fails its quality rule and raises an alert.
    valid_rate_threshold: float = Field(default=0.9, ge=0, le=1)


class FieldSettings(_Section):
    """How a declared mapping fills one canonical column."""

    path: str | list[str] | None = None  # the first non-null of these paths
    const: str | None = None
    # Translate source values (case-insensitive); null: a known value with no translation.
    # A value the map does not name is nulled and flagged {column}_invalid.
    values: dict[str, str | None] | None = None
    minor_units: bool = False  # amounts given in cents (the currency's minor unit)
    date_format: str | None = None  # e.g. "%d/%m/%Y" or "%Y-%m-%d %H:%M:%S"
    ids: dict[str, str] | None = None  # external_ids: provider -> path


class MappingSettings(_Section):
    """A tenant's own mapping of a source's streams to a canonical table."""

    table: str
    provider: str
    streams: list[str]
    # canonical column -> a path, paths (the first non-empty wins), or its settings
    fields: dict[str, str | list[str] | FieldSettings]
    explode: str | None = None
    require: list[str] = Field(default_factory=list)


# Traits of a profile and the rules that can choose them (see opencdp.identity.survivorship).
SurvivorshipRule = Literal["source_priority", "most_recent", "most_frequent", "first_non_null"]
# Link rules: how two records of one person are linked. Every provider's customer id and
# cross-reference is an `external_id`; `probabilistic` is the Fellegi-Sunter model.
LinkRule = Literal["external_id", "phone", "email", "anonymous_id", "probabilistic"]
_LINK_ORDER: tuple[LinkRule, ...] = (
    "external_id",
    "phone",
    "email",
    "anonymous_id",
    "probabilistic",
)


class IdentitySettings(_Section):
    """Identity resolution: which links are trusted, the guardrails, the model, the traits."""

    # Link rules, strongest first: when a merge would break a limit, links by the weaker
    # rule give way.
    priority: list[LinkRule] = Field(default_factory=lambda: list(_LINK_ORDER))
    # At most this many distinct values of an identifier type in one profile: a link that
    # would make more is refused and its value reported (one phone per person keeps a
    # family's shared email from merging its members).
    limits: dict[str, int] = Field(
        default_factory=lambda: {"phone": 1, "email": 5, "segment_id": 1}
    )
    # An identifier value found on more separate people than this (after stronger links)
    # is blocked: an office address, a placeholder phone.
    max_people: int = Field(default=5, ge=1)
    # Segment userIds are this provider's customer ids (e.g. shopify): a cross-reference.
    user_id_provider: str | None = None
    # Probabilistic links at or above match_threshold join profiles; those from
    # possible_threshold up are kept as possible matches for review.
    match_threshold: float = Field(default=0.99, gt=0, lt=1)
    possible_threshold: float = Field(default=0.8, gt=0, lt=1)
    # Survivorship: the rule per trait (default for traits not named), and the source
    # order `source_priority` follows (providers not listed come last).
    trait_rules: dict[str, SurvivorshipRule] = Field(default_factory=dict)
    default_rule: SurvivorshipRule = "most_recent"
    source_priority: list[str] = Field(default_factory=lambda: ["crm", "shopify", "stripe"])

    @model_validator(mode="after")
    def _thresholds(self) -> IdentitySettings:
        if self.possible_threshold > self.match_threshold:
            raise ValueError("possible_threshold must not exceed match_threshold")
        if len(set(self.priority)) != len(self.priority):
            raise ValueError("priority names each link rule once")
        return self


def _check_cron(schedule: str | None) -> str | None:
    from croniter import croniter

    if schedule is not None and not croniter.is_valid(schedule):
        raise ValueError(f"{schedule!r} is not a cron expression (e.g. '0 * * * *')")
    return schedule


class TenantSettings(_Section):
    """A tenant: its defaults and its declared sources."""

    default_country: str = "US"
    timezone: str = "UTC"
    # The collection service's rate limit for this tenant (default: collect's).
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    rate_limit_burst: int | None = Field(default=None, ge=1)
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    mappings: list[MappingSettings] = Field(default_factory=list)
    identity: IdentitySettings = IdentitySettings()
    # When `opencdp scheduler` runs the batch pipeline (transform, identity resolution, the
    # load into the serving database and the search index): a cron expression, or never.
    pipeline_schedule: str | None = None
    # When it runs `opencdp maintain` (compaction, position deletes folded back, old
    # snapshots expired): a cron expression, or never.
    maintenance_schedule: str | None = None
    # The snapshot history maintenance keeps, for `opencdp rollback`.
    keep_snapshot_days: float = Field(default=7, ge=0)

    @field_validator("pipeline_schedule", "maintenance_schedule")
    @classmethod
    def _cron(cls, schedule: str | None) -> str | None:
        return _check_cron(schedule)


class Settings(BaseSettings):
    """Every setting of an OpenCDP installation."""

    model_config = SettingsConfigDict(
        env_prefix="OPENCDP_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    root: Path = DEFAULT_ROOT
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
    batch_size: int = Field(default=20_000, ge=1)
    storage: StorageSettings = StorageSettings()
    catalog: CatalogSettings = CatalogSettings()
    database: DatabaseSettings = DatabaseSettings()
    alerts: AlertSettings = AlertSettings()
    collect: CollectSettings = CollectSettings()
    transform: TransformSettings = TransformSettings()
    serve: ServeSettings = ServeSettings()
    tenants: dict[str, TenantSettings] = Field(default_factory=dict)

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, tenants: dict[str, TenantSettings]) -> dict[str, TenantSettings]:
        for name in tenants:
            try:
                check_name(name, "tenant")
            except InvalidNameError as e:
                raise ValueError(str(e)) from e  # pydantic reports it with its location
        return tenants

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file lives in the root, so the root must be known before the file is read.
        init_root = getattr(init_settings, "init_kwargs", {}).get("root")
        root = Path(init_root or os.environ.get("OPENCDP_ROOT") or DEFAULT_ROOT)
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=root / CONFIG_FILE)
        return (init_settings, env_settings, yaml_source, file_secret_settings)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def storage_url(self) -> str:
        return self.storage.url or str(self.root.resolve())

    def tenant(self, name: str) -> TenantSettings:
        """The settings of tenant `name`; a tenant not in opencdp.yaml gets the defaults."""
        return self.tenants.get(check_name(name, "tenant"), TenantSettings())


def load_settings(root: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: overrides > environment > {root}/opencdp.yaml > defaults."""
    if root is not None:
        overrides["root"] = root
    config_root = Path(overrides.get("root") or os.environ.get("OPENCDP_ROOT") or DEFAULT_ROOT)
    read_config_file(config_root / CONFIG_FILE)  # clear errors for a broken file
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise ConfigError(
            f"invalid settings: {_describe(e)}",
            hint=f"check {config_root / CONFIG_FILE} and the OPENCDP_* environment variables",
        ) from e


def resolve_env_refs(value: Any, environ: dict[str, str]) -> Any:
    """Replace "env:NAME" strings by the environment variable NAME (secrets stay out of
    opencdp.yaml); a missing variable is an error that names it, never a value."""
    if isinstance(value, dict):
        return {k: resolve_env_refs(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env_refs(v, environ) for v in value]
    if isinstance(value, str) and value.startswith("env:"):
        name = value.removeprefix("env:")
        if name not in environ:
            raise ConfigError(
                f"the configuration needs the environment variable {name}",
                hint=f"export {name}=... before running the extraction",
            )
        return environ[name]
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """The parsed opencdp.yaml, or {} when the file does not exist."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}", hint="fix the file's syntax") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level")
    return data


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
        for err in error.errors()
    )
