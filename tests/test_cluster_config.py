"""Cluster settings: [bus], [cluster] and several AMI endpoints, with the single [ami] still working."""

from __future__ import annotations

import pytest

from cti.config import ConfigError, ami_endpoints, load_settings

TOML = '''
[ami]
username = "cti"
secret = "s3cret"
reconnect_max = 5.0

[[ami.endpoints]]
name = "beijing"
host = "10.0.0.1"

[[ami.endpoints]]
name = "shanghai"
host = "10.0.0.2"
port = 5039
secret = "other"

[bus]
url = "redis://127.0.0.1:6379/0"
maxlen = 50000

[cluster]
node_id = "cti-1"
lease_ttl = 2.5
'''


def test_defaults_are_one_node_and_the_single_ami_endpoint():
    s = load_settings(None, env={})
    assert (s.bus.url, s.cluster.node_id) == ("memory://", "")
    [ep] = ami_endpoints(s)
    assert (ep.server, ep.host, ep.port) == ("default", "127.0.0.1", 5038)


def test_several_asterisks_inherit_the_common_ami_keys(tmp_path):
    f = tmp_path / "cti.toml"
    f.write_text(TOML, encoding="utf-8")
    s = load_settings(f, env={})
    eps = ami_endpoints(s)
    assert [(e.server, e.host, e.port, e.username, e.secret, e.reconnect_max) for e in eps] == [
        ("beijing", "10.0.0.1", 5038, "cti", "s3cret", 5.0), ("shanghai", "10.0.0.2", 5039, "cti", "other", 5.0)]
    assert (s.bus.url, s.bus.maxlen, s.cluster.node_id, s.cluster.lease_ttl) == (
        "redis://127.0.0.1:6379/0", 50000, "cti-1", 2.5)


def test_endpoints_from_the_environment():
    s = load_settings(None, env={"CTI_AMI_ENDPOINTS": '[{"name": "a", "host": "h1"}, {"name": "b", "host": "h2"}]',
                                 "CTI_BUS_URL": "redis://r:6379/1"})
    assert [e.server for e in ami_endpoints(s)] == ["a", "b"] and s.bus.url == "redis://r:6379/1"


@pytest.mark.parametrize("env, key", [
    ({"CTI_BUS_URL": "kafka://x"}, "bus.url"),
    ({"CTI_CLUSTER_LEASE_TTL": "0.1"}, "cluster.lease_ttl"),
    ({"CTI_AMI_ENDPOINTS": '[{"host": "h"}]'}, r"ami.endpoints\[0\].name"),
    ({"CTI_AMI_ENDPOINTS": '[{"name": "a"}, {"name": "a"}]'}, r"ami.endpoints\[1\].name"),
    ({"CTI_AMI_ENDPOINTS": '[{"name": "a", "port": 99999}]'}, r"ami.endpoints\[0\].port"),
    ({"CTI_AMI_ENDPOINTS": '[{"name": "a", "hots": "x"}]'}, r"ami.endpoints\[0\].hots"),
    ({"CTI_AMI_ENDPOINTS": '{"name": "a"}'}, "CTI_AMI_ENDPOINTS"),
])
def test_bad_cluster_values_name_the_key(env, key):
    with pytest.raises(ConfigError, match=key):
        load_settings(None, env=env)
