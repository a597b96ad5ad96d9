"""Settings: a TOML file overridden by ``CTI_<SECTION>_<KEY>`` environment variables.

Defaults run with no file at all. A bad value stops start-up with a
:class:`ConfigError` naming the key (``agi.port``, ``CTI_AGI_PORT``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cti.outbound.config import OutboundConfig
from cti.tickets.config import TicketsConfig


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///./cti.db"
    echo: bool = False


@dataclass(frozen=True)
class AmiConfig:
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "cti"
    secret: str = ""
    enabled: bool = True
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    server: str = "default"
    #: Below Asterisk 16.0 (Newexten in the 'call' class): "warn" (log, go on) or "refuse" (do not connect).
    min_version_policy: str = "warn"
    #: Several Asterisk servers: ``[[ami.endpoints]]`` tables {name, host, port, username, secret}
    #: (``CTI_AMI_ENDPOINTS`` as a JSON list). Empty: the single endpoint above. See :func:`ami_endpoints`.
    endpoints: tuple[dict[str, Any], ...] = ()
    #: Send the secret in clear (``Secret``) when Asterisk refuses the MD5 ``Challenge``. Off: never.
    allow_plaintext_login: bool = False


@dataclass(frozen=True)
class AgiConfig:
    host: str = "127.0.0.1"
    port: int = 4573
    #: Budget for the whole decision (lookup + routing); past it the default route answers.
    deadline_ms: int = 300
    #: Longest time cti waits for the peer to finish the environment block or answer a command.
    read_timeout_s: float = 5.0
    max_env_bytes: int = 16384
    #: Addresses/networks (CIDR) allowed to open FastAGI sessions; empty: loopback + the AMI endpoints' hosts.
    allowed_peers: tuple[str, ...] = ()
    #: File descriptors kept free for FastAGI (and the database): the web side never uses them.
    reserved_fds: int = 256


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    #: Origins allowed to open the websocket (the console's own origin is always allowed).
    console_origins: tuple[str, ...] = ()
    token_secret: str = ""
    token_ttl_s: int = 12 * 3600
    #: TOML file of cross-sell rules for the screen-pop (empty: the packaged cti/web/crosssell.toml).
    crosssell_rules: str = ""
    #: No cross-sell on the pop of a caller with an open complaint on the complaints line.
    crosssell_skip_complaints: bool = True
    #: Most simultaneous HTTP/websocket connections (lowered to fit the process's file descriptors).
    max_connections: int = 10000
    #: A connection must send a complete request head within this many seconds of connecting or of
    #: its previous response (slow headers, idle keep-alive); then it is closed.
    header_timeout_s: float = 15.0
    #: A request body must arrive within this many seconds (else 408).
    body_timeout_s: float = 15.0
    #: Most websockets waiting for their first-message authentication at once.
    max_pending_websockets: int = 256
    #: Addresses/networks (CIDR) of reverse proxies whose ``X-Forwarded-For`` names the client.
    trusted_proxies: tuple[str, ...] = ()
    #: Password checks (argon2) run at once; the others wait their turn, one per client address at a time.
    login_hash_concurrency: int = 2
    #: Websocket messages a client may send per second (bursts of 5 s of it); past it: close 1008.
    ws_message_rate: float = 20.0


@dataclass(frozen=True)
class PhoneConfig:
    default_region: str = "CN"


@dataclass(frozen=True)
class GreetingConfig:
    #: Directory Asterisk plays from (``astvarlibdir/sounds/<lang>/cti`` or a shared path).
    sounds_dir: str = "./sounds"
    #: Prefix of the sound names handed to ``Playback()`` (a sub-directory of Asterisk's sounds).
    sound_prefix: str = "cti"
    espeak: str = "espeak-ng"
    sox: str = "sox"
    voice_zh: str = "cmn"
    voice_en: str = "en-us"
    generic_zh: str = "您好，欢迎致电客户服务热线"
    generic_en: str = "Hello, thank you for calling customer service"


@dataclass(frozen=True)
class RoutingConfig:
    default_queue: str = "appliances"
    queues: tuple[str, ...] = ("complaints", "appliances", "mobile")
    #: Number dialed (digits) -> queue; a number not listed goes through the caller's history/IVR.
    dids: Mapping[str, str] = field(default_factory=dict)
    #: IVR digit -> queue.
    ivr: Mapping[str, str] = field(
        default_factory=lambda: {"1": "appliances", "2": "mobile", "3": "complaints"}
    )
    base_priority: int = 0
    vip_priority: int = 5
    complaint_priority: int = 10
    timezone: str = "Asia/Shanghai"
    #: Business hours per weekday (0 = Monday): "HH:MM-HH:MM"; a missing day is closed.
    hours: Mapping[str, str] = field(
        default_factory=lambda: {str(d): "08:00-20:30" for d in range(7)}
    )
    afterhours_queue: str = ""
    #: Language of callers cti does not know (greeting and IVR prompts).
    default_language: str = "zh"


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    #: "auto" (console on a terminal, JSON otherwise), "json" or "console".
    format: str = "auto"


@dataclass(frozen=True)
class DeployConfig:
    """``cti dialplan deploy``: where the files go and how Asterisk is asked to reload them."""

    #: The files to deploy: a checkout (asterisk-config/ + dialplans/) or an /etc/asterisk-like folder.
    source_dir: str = "."
    #: Asterisk's configuration directory (astetcdir) that deploy writes into.
    asterisk_config_dir: str = "/etc/asterisk"
    #: Versions replaced by each deploy (empty: <asterisk_config_dir>/.cti-deploy).
    backup_dir: str = ""
    #: "ami": a deploy-only AMI user (write = config); "cli": ``asterisk -rx`` on the PBX host.
    reload: str = "ami"
    #: AMI of the deploy user (empty / 0: ami.host / ami.port).
    ami_host: str = ""
    ami_port: int = 0
    ami_username: str = "cti-deploy"
    ami_secret: str = ""
    #: For reload = "cli": the asterisk binary and, if not the default, its asterisk.conf (-C).
    asterisk_bin: str = "asterisk"
    asterisk_conf: str = ""
    #: Longest wait for each reload/verification answer.
    verify_timeout_s: float = 10.0
    #: Deploy versions kept in backup_dir.
    keep_versions: int = 20


@dataclass(frozen=True)
class BusConfig:
    #: "memory://" (one process) or "redis://HOST:PORT/DB" (several nodes share one Redis Stream).
    url: str = "memory://"
    stream: str = "cti:events"
    #: Retention of the stream (approximate MAXLEN): how much a node away from Redis can replay.
    maxlen: int = 100_000


@dataclass(frozen=True)
class WallboardConfig:
    """Wallboard thresholds (tile colours) and the intraday chart's forecast (docs/wallboard.md)."""

    #: Red below/above these; a negative value switches the check off.
    answer_rate: float = 0.8
    service_level: float = 0.8
    abandon_rate: float = 0.2
    longest_wait_s: float = 120.0
    #: Rates are judged once this many calls were offered in the period.
    min_offered: int = 5
    #: Amber: a rate within this share of its target (0.05: answer rate 80-85%), a wait above ``warn_wait_s``.
    warn_margin: float = 0.05
    warn_wait_s: float = 60.0
    #: Intraday chart forecast: the staffing plan's seed day of this many calls (0: no forecast line).
    forecast_daily_calls: float = 2000.0


@dataclass(frozen=True)
class ClusterConfig:
    #: This node's name among the nodes sharing Redis (empty: hostname-pid-random).
    node_id: str = ""
    #: Lease time of each Asterisk's AMI consumer and of the singleton schedulers (seconds).
    lease_ttl: float = 3.0


@dataclass(frozen=True)
class Settings:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    ami: AmiConfig = field(default_factory=AmiConfig)
    agi: AgiConfig = field(default_factory=AgiConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    phone: PhoneConfig = field(default_factory=PhoneConfig)
    greeting: GreetingConfig = field(default_factory=GreetingConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    log: LogConfig = field(default_factory=LogConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tickets: TicketsConfig = field(default_factory=TicketsConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    wallboard: WallboardConfig = field(default_factory=WallboardConfig)

    def replace(self, section: str, **values: Any) -> "Settings":
        """A copy with some keys of one section changed (for tests and the CLI)."""
        current = getattr(self, section)
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **values)})


_SECTIONS: dict[str, type] = {f.name: f.default_factory().__class__ for f in dataclasses.fields(Settings)}  # type: ignore[misc]


def _coerce(key: str, value: Any, target: Any, from_env: bool) -> Any:
    """Convert a raw TOML or environment value to the field's type, or raise ConfigError."""
    tname = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    try:
        if tname.startswith("tuple[dict"):
            if from_env and isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, dict) for v in value):
                raise ValueError("expected a list of tables")
            return tuple(dict(v) for v in value)
        if tname == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if tname == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected an integer")
            return int(value)
        if tname == "float":
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if tname == "str":
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError("expected a string")
            return str(value)
        if tname.startswith("tuple"):
            if from_env and isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise ValueError("expected a list")
            return tuple(str(v) for v in value)
        if tname.startswith("Mapping[str, Any]"):  # nested tables, checked by their section (outbound)
            if from_env and isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError("expected a table")
            return dict(value)
        if tname.startswith("Mapping"):
            if from_env and isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError("expected a table")
            return {str(k): str(v) for k, v in value.items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid value for {key}: {value!r} ({exc})") from None
    raise ConfigError(f"unsupported type for {key}")  # pragma: no cover


def load_settings(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (or ``$CTI_CONFIG``), then apply environment overrides."""
    env = os.environ if env is None else env
    path = path or env.get("CTI_CONFIG") or None
    data: dict[str, Any] = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    for section in data:
        if section not in _SECTIONS:
            raise ConfigError(f"unknown config section [{section}]")
    sections: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        raw = data.get(section, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"[{section}] must be a table")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in fields:
                raise ConfigError(f"unknown config key {section}.{key}")
        values: dict[str, Any] = {}
        for name, f in fields.items():
            env_key = f"CTI_{section.upper()}_{name.upper()}"
            if env_key in env:
                values[name] = _coerce(env_key, env[env_key], f.type, True)
            elif name in raw:
                values[name] = _coerce(f"{section}.{name}", raw[name], f.type, False)
        sections[section] = cls(**values)
    settings = Settings(**sections)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Semantic checks that types alone cannot express."""
    for key, port in (("ami.port", settings.ami.port), ("agi.port", settings.agi.port), ("http.port", settings.http.port)):
        if not 0 <= port <= 65535:
            raise ConfigError(f"invalid value for {key}: {port} (expected 0-65535)")
    url = settings.database.url
    if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
        raise ConfigError(
            f"invalid value for database.url: {url!r} (expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://...)"
        )
    r = settings.routing
    for key, queue in [("routing.default_queue", r.default_queue)] + [
        (f"routing.dids.{k}", v) for k, v in r.dids.items()
    ] + [(f"routing.ivr.{k}", v) for k, v in r.ivr.items()]:
        if queue not in r.queues:
            raise ConfigError(f"invalid value for {key}: queue {queue!r} is not in routing.queues {list(r.queues)}")
    if r.afterhours_queue and r.afterhours_queue not in r.queues:
        raise ConfigError(f"invalid value for routing.afterhours_queue: {r.afterhours_queue!r} is not a queue")
    if r.default_language not in ("zh", "en"):
        raise ConfigError(f"invalid value for routing.default_language: {r.default_language!r} (zh or en)")
    try:
        ZoneInfo(r.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"invalid value for routing.timezone: {r.timezone!r}") from None
    w = settings.wallboard
    for key in ("answer_rate", "service_level", "abandon_rate", "warn_margin"):
        if getattr(w, key) > 1:
            raise ConfigError(f"invalid value for wallboard.{key}: {getattr(w, key)} (a share: 0.8, not 80)")
    if w.min_offered < 0 or w.warn_margin < 0 or w.forecast_daily_calls < 0:
        raise ConfigError("invalid value for wallboard.min_offered/warn_margin/forecast_daily_calls: negative")
    from cti.routing.hours import parse_hours  # local import: routing depends on nothing here

    try:
        parse_hours(r.hours)
    except ValueError as exc:
        raise ConfigError(f"invalid value for routing.hours: {exc}") from None
    try:
        settings.tickets.policy()
        settings.tickets.notifier()
    except ValueError as exc:
        raise ConfigError(f"invalid value for {exc}") from None
    try:
        settings.outbound.build()
    except ValueError as exc:
        raise ConfigError(f"invalid value for {exc}") from None
    if settings.agi.deadline_ms <= 0:
        raise ConfigError("invalid value for agi.deadline_ms: must be positive")
    _validate_limits(settings)
    d = settings.deploy
    if d.reload not in ("ami", "cli"):
        raise ConfigError(f"invalid value for deploy.reload: {d.reload!r} (ami or cli)")
    if not 0 <= d.ami_port <= 65535:
        raise ConfigError(f"invalid value for deploy.ami_port: {d.ami_port} (expected 0-65535)")
    if d.keep_versions < 1:
        raise ConfigError("invalid value for deploy.keep_versions: must be at least 1")
    if d.verify_timeout_s <= 0:
        raise ConfigError("invalid value for deploy.verify_timeout_s: must be positive")
    if settings.ami.min_version_policy not in ("warn", "refuse"):
        raise ConfigError(f"invalid value for ami.min_version_policy: {settings.ami.min_version_policy!r} "
                          "(warn or refuse)")
    ami_endpoints(settings)  # raises ConfigError on a bad endpoint
    if not (settings.bus.url == "memory://" or settings.bus.url.startswith(("redis://", "rediss://", "unix://"))):
        raise ConfigError(f"invalid value for bus.url: {settings.bus.url!r} (memory:// or redis://HOST:PORT/DB)")
    if settings.bus.maxlen < 1000:
        raise ConfigError("invalid value for bus.maxlen: must be at least 1000")
    if settings.cluster.lease_ttl < 0.5:
        raise ConfigError("invalid value for cluster.lease_ttl: must be at least 0.5 s")
    if settings.log.format not in ("auto", "json", "console"):
        raise ConfigError(f"invalid value for log.format: {settings.log.format!r}")
    import phonenumbers

    if settings.phone.default_region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"invalid value for phone.default_region: {settings.phone.default_region!r}")


def _validate_limits(settings: Settings) -> None:
    """The transport limits of [http] and [agi] (issue 17)."""
    from cti.netaddr import parse_networks  # local import: config depends on nothing of cti

    h, a = settings.http, settings.agi
    for key, value, low in (("http.max_connections", h.max_connections, 16),
                            ("http.max_pending_websockets", h.max_pending_websockets, 1),
                            ("http.login_hash_concurrency", h.login_hash_concurrency, 1),
                            ("agi.reserved_fds", a.reserved_fds, 0)):
        if value < low:
            raise ConfigError(f"invalid value for {key}: {value} (at least {low})")
    for key, value in (("http.header_timeout_s", h.header_timeout_s), ("http.body_timeout_s", h.body_timeout_s),
                       ("http.ws_message_rate", h.ws_message_rate)):
        if not value > 0 or value != value or value == float("inf"):
            raise ConfigError(f"invalid value for {key}: {value} (must be a positive number)")
    for key, values in (("http.trusted_proxies", h.trusted_proxies), ("agi.allowed_peers", a.allowed_peers)):
        try:
            parse_networks(values)
        except ValueError as exc:
            raise ConfigError(f"invalid value for {key}: {exc}") from None


_ENDPOINT_KEYS = {"name": str, "host": str, "port": int, "username": str, "secret": str}


def ami_endpoints(settings: Settings) -> list[AmiConfig]:
    """One AmiConfig per Asterisk server: ``ami.endpoints`` if given (each inherits the other
    ``ami.*`` keys, ``server`` = its ``name``), else the single ``[ami]`` endpoint."""
    base = settings.ami
    if not base.endpoints:
        return [base]
    out: list[AmiConfig] = []
    for i, ep in enumerate(base.endpoints):
        key = f"ami.endpoints[{i}]"
        for k, v in ep.items():
            if k not in _ENDPOINT_KEYS:
                raise ConfigError(f"unknown config key {key}.{k}")
            if not isinstance(v, _ENDPOINT_KEYS[k]) or isinstance(v, bool):
                raise ConfigError(f"invalid value for {key}.{k}: {v!r}")
        name = ep.get("name")
        if not name:
            raise ConfigError(f"invalid value for {key}.name: each endpoint needs a name")
        if name in {e.server for e in out}:
            raise ConfigError(f"invalid value for {key}.name: {name!r} is listed twice")
        port = ep.get("port", base.port)
        if not 0 <= port <= 65535:
            raise ConfigError(f"invalid value for {key}.port: {port} (expected 0-65535)")
        out.append(dataclasses.replace(base, endpoints=(), server=name, host=ep.get("host", base.host), port=port,
                                       username=ep.get("username", base.username),
                                       secret=ep.get("secret", base.secret)))
    return out
