from __future__ import annotations

from pathlib import Path

import pytest

from opencdp.errors import ConfigError, InvalidNameError
from opencdp.settings import Settings, load_settings


def write_config(root: Path, text: str) -> None:
    (root / "opencdp.yaml").write_text(text, encoding="utf-8")


def test_defaults_without_a_config_file(data_root: Path, clean_env: None) -> None:
    s = load_settings(data_root)
    assert s.root == data_root
    assert s.batch_size == 20_000
    assert s.database.url is None
    assert s.catalog.properties == {}
    assert s.storage_url == str(data_root.resolve())


def test_file_then_environment_then_overrides(
    data_root: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        data_root,
        "batch_size: 5\nlog_level: debug\ndatabase: {url: 'postgresql://file@h/db'}\n",
    )
    assert load_settings(data_root).batch_size == 5
    monkeypatch.setenv("OPENCDP_BATCH_SIZE", "7")
    monkeypatch.setenv("OPENCDP_DATABASE__URL", "postgresql://env@h/db")
    s = load_settings(data_root)
    assert s.batch_size == 7
    assert s.log_level == "debug"  # untouched by the environment: from the file
    assert s.database.url is not None
    assert s.database.url.get_secret_value() == "postgresql://env@h/db"
    assert load_settings(data_root, batch_size=9).batch_size == 9


def test_root_from_environment(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "batch_size: 3\n")
    monkeypatch.setenv("OPENCDP_ROOT", str(tmp_path))
    s = load_settings()
    assert s.root == tmp_path
    assert s.batch_size == 3


def test_secrets_do_not_print(data_root: Path, clean_env: None) -> None:
    s = load_settings(data_root, database={"url": "postgresql://u:hunter2@h/db"})
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.model_dump())


def test_tenants_and_sources(data_root: Path, clean_env: None) -> None:
    write_config(
        data_root,
        """
tenants:
  acme_corp:
    default_country: GB
    sources:
      store: {provider: shopify, kind: tap, schedule: "0 * * * *"}
""",
    )
    s = load_settings(data_root)
    assert s.tenant("acme_corp").default_country == "GB"
    assert s.tenant("acme_corp").sources["store"].provider == "shopify"
    assert s.tenant("unknown").default_country == "US"  # undeclared tenants get defaults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batch_size: 0\n", "batch_size"),
        ("log_level: loud\n", "log_level"),
        ("bogus_key: 1\n", "bogus_key"),
        ("database: {url: 'mysql://x'}\n", "postgresql"),
        ("tenants: {Bad-Name: {}}\n", "invalid tenant name"),
        ("tenants: {acme: {sources: {s: {kind: tap}}}}\n", "provider"),
    ],
)
def test_invalid_settings_say_what_and_where(
    data_root: Path, clean_env: None, text: str, message: str
) -> None:
    write_config(data_root, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(data_root)
    assert "opencdp.yaml" in str(info.value)


def test_broken_yaml_is_a_config_error(data_root: Path, clean_env: None) -> None:
    write_config(data_root, "tenants: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(data_root)


def test_tenant_lookup_validates_the_name(settings: Settings) -> None:
    with pytest.raises(InvalidNameError):
        settings.tenant("../etc")
