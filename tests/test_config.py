"""Settings: defaults with no file, TOML, environment overrides, errors that name the key."""

from __future__ import annotations

import pytest

from cti.config import ConfigError, load_settings


def test_defaults_without_a_file():
    s = load_settings(None, env={})
    assert s.database.url == "sqlite+aiosqlite:///./cti.db"
    assert (s.ami.host, s.ami.port, s.agi.port, s.http.port) == ("127.0.0.1", 5038, 4573, 8080)


def test_toml_and_environment_override(tmp_path):
    f = tmp_path / "cti.toml"
    f.write_text('[agi]\nport = 4600\n[routing]\ndids = {"4008001234" = "mobile"}\n', encoding="utf-8")
    s = load_settings(f, env={"CTI_AGI_HOST": "0.0.0.0", "CTI_DATABASE_URL": "postgresql+asyncpg://u@h/db"})
    assert s.agi.port == 4600 and s.agi.host == "0.0.0.0"
    assert s.database.url.startswith("postgresql+asyncpg://")
    assert s.routing.dids == {"4008001234": "mobile"}


@pytest.mark.parametrize(
    "env, key",
    [
        ({"CTI_AGI_PORT": "abc"}, "CTI_AGI_PORT"),
        ({"CTI_AGI_PORT": "70000"}, "agi.port"),
        ({"CTI_DATABASE_URL": "mysql://x"}, "database.url"),
        ({"CTI_ROUTING_DEFAULT_QUEUE": "sales"}, "routing.default_queue"),
        ({"CTI_ROUTING_TIMEZONE": "Mars/Base"}, "routing.timezone"),
        ({"CTI_ROUTING_HOURS": '{"0": "20:00-08:00"}'}, "routing.hours"),
        ({"CTI_PHONE_DEFAULT_REGION": "XX"}, "phone.default_region"),
        ({"CTI_AMI_MIN_VERSION_POLICY": "ignore"}, "ami.min_version_policy"),
    ],
)
def test_bad_values_name_the_key(env, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(None, env=env)


def test_unknown_key_and_section_are_errors(tmp_path):
    f = tmp_path / "cti.toml"
    f.write_text("[agi]\nprot = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="agi.prot"):
        load_settings(f, env={})
    f.write_text("[agii]\nport = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="agii"):
        load_settings(f, env={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml", env={})


def test_min_version_policy_defaults_to_warn_and_is_inherited_by_every_endpoint():
    from cti.config import ami_endpoints

    assert load_settings(None, env={}).ami.min_version_policy == "warn"
    s = load_settings(None, env={"CTI_AMI_MIN_VERSION_POLICY": "refuse",
                                 "CTI_AMI_ENDPOINTS": '[{"name": "a"}, {"name": "b", "host": "10.0.0.2"}]'})
    assert [e.min_version_policy for e in ami_endpoints(s)] == ["refuse", "refuse"]
