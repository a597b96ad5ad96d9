"""The issue-17 settings: defaults, and a bad value names its key."""

from __future__ import annotations

import pytest

from cti.config import ConfigError, load_settings


def test_defaults_are_sane() -> None:
    s = load_settings(None, env={})
    assert (s.http.max_connections, s.http.header_timeout_s, s.http.max_pending_websockets) == (10000, 15.0, 256)
    assert (s.agi.allowed_peers, s.agi.reserved_fds, s.ami.allow_plaintext_login) == ((), 256, False)
    assert s.http.trusted_proxies == () and s.http.login_hash_concurrency == 2 and s.http.ws_message_rate == 20.0


@pytest.mark.parametrize("env_key, value, key", [
    ("CTI_HTTP_MAX_CONNECTIONS", "3", "http.max_connections"),
    ("CTI_HTTP_HEADER_TIMEOUT_S", "0", "http.header_timeout_s"),
    ("CTI_HTTP_BODY_TIMEOUT_S", "inf", "http.body_timeout_s"),
    ("CTI_HTTP_WS_MESSAGE_RATE", "-1", "http.ws_message_rate"),
    ("CTI_HTTP_LOGIN_HASH_CONCURRENCY", "0", "http.login_hash_concurrency"),
    ("CTI_HTTP_MAX_PENDING_WEBSOCKETS", "0", "http.max_pending_websockets"),
    ("CTI_HTTP_TRUSTED_PROXIES", "10.0.0.0/8,not-an-ip", "http.trusted_proxies"),
    ("CTI_AGI_ALLOWED_PEERS", "300.1.1.1", "agi.allowed_peers"),
    ("CTI_AGI_RESERVED_FDS", "-1", "agi.reserved_fds"),
])
def test_a_bad_limit_names_its_key(env_key: str, value: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(None, env={env_key: value})
