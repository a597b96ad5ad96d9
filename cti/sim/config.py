"""Configuration of the simulated PBX: AMI users, queues, agents, dialplan timings, traffic.

Every field has a default that mirrors the captured lab (three queues, two agents each, AMI users
``cti``/``cti-secret`` with ``read = all`` and ``cti-min`` without the ``dialplan`` class). An
*agents file* (TOML) replaces queues and agents::

    [[queue]]
    name = "complaints"        # strategy: ringall | rrmemory | leastrecent | fewestcalls
    strategy = "ringall"
    timeout = 15               # ring timeout (s)
    retry = 2                  # pause before the next attempt (s)
    wrapuptime = 0             # s after a call before the member rings again
    weight = 10

    [[agent]]
    interface = "PJSIP/3001"   # any Asterisk interface string
    name = "Sun Li"
    queues = ["complaints"]    # static member of these queues
    penalty = 0
    answer_delay = 2.0         # s of ringing before answering
    aht = 60                   # mean talk time (s), log-normal
    noanswer = false           # rings forever (tests ring timeout)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from cti.sim.ami_format import ALL_READ_CLASSES
from cti.sim.queue import MemberConfig, QueueConfig, Strategy


@dataclass(frozen=True)
class AmiUser:
    secret: str
    read: frozenset[str] = ALL_READ_CLASSES
    write: frozenset[str] = ALL_READ_CLASSES


def parse_classes(text: str) -> frozenset[str]:
    """``read = system,call,agent`` -> classes; ``all`` expands to every class."""
    words = {w.strip().lower() for w in text.split(",") if w.strip()}
    if "all" in words:
        return ALL_READ_CLASSES
    return frozenset(words)


@dataclass(frozen=True)
class AgentConfig:
    interface: str
    name: str
    queues: tuple[str, ...] = ()
    penalty: int = 0
    answer_delay: float = 2.0
    aht: float = 60.0
    noanswer: bool = False


def default_users() -> dict[str, AmiUser]:
    return {
        "cti": AmiUser("cti-secret"),
        "cti-min": AmiUser(
            "cti-min-secret",
            read=parse_classes("system,call,agent,user,reporting"),
            write=parse_classes("system,call,agent,originate,reporting"),
        ),
    }


def default_queues() -> tuple[QueueConfig, ...]:
    return (
        QueueConfig("complaints", Strategy.RINGALL, weight=10),
        QueueConfig("appliances", Strategy.RRMEMORY),
        QueueConfig("mobile", Strategy.RRMEMORY),
    )


def default_agents() -> tuple[AgentConfig, ...]:
    return (
        AgentConfig("PJSIP/3001", "Sun Li", ("complaints",)),
        AgentConfig("PJSIP/3002", "Zhou Qiang", ("complaints",)),
        AgentConfig("PJSIP/2001", "Zhao Min", ("appliances",)),
        AgentConfig("PJSIP/2002", "Liu Yang", ("appliances",)),
        AgentConfig("PJSIP/1001", "Li Na", ("mobile",)),
        AgentConfig("PJSIP/1002", "Chen Jie", ("mobile",)),
    )


@dataclass(frozen=True)
class SimConfig:
    # AMI server
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    users: dict[str, AmiUser] = field(default_factory=default_users)
    auth_fail_delay: float = 1.0  # real seconds before "Authentication failed" (Asterisk: ~1 s)
    # FastAGI target (cti)
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_connect_timeout: float = 2.0  # MAX_AGI_CONNECT (simulated seconds)
    # Real seconds at least: the connect is real network I/O, and a fast clock must not turn
    # MAX_AGI_CONNECT into milliseconds (a burst of calls would then fail to connect).
    agi_connect_floor: float = 2.0
    # dialplan
    context: str = "cti-inbound"
    dnid: str = "8005551234"
    trunk: str = "PJSIP/trunk"
    default_queue: str = "appliances"
    answer_seconds: float = 0.5
    greeting_seconds: float = 3.0
    ivr_seconds: float = 4.0
    afterhours_seconds: float = 8.0
    # queues and agents
    queues: tuple[QueueConfig, ...] = field(default_factory=default_queues)
    agents: tuple[AgentConfig, ...] = field(default_factory=default_agents)
    dynamic_answer_delay: float = 2.0  # for members added with QueueAdd that no agent entry knows
    dynamic_aht: float = 60.0
    patience_mean: float = 120.0  # mean caller patience before abandoning (s, exponential)
    originate_answer_delay: float = 3.0  # click-to-dial: the customer picks up after this
    # traffic (0 calls per day: only scripted calls, ``SimPbx.place_call``)
    calls_per_day: float = 0.0
    known_callers: tuple[tuple[str, str], ...] = ()  # (number, name) of customers the demo knows
    unknown_share: float = 0.4
    # clock
    speed: float = 1.0
    start_epoch: Optional[float] = None  # simulated wall clock at start; None = now
    seed: Optional[int] = None

    def with_agents_file(self, path: str | Path) -> "SimConfig":
        return replace(self, **load_agents_file(path))


def _queue_from(entry: dict[str, Any], members: list[MemberConfig]) -> QueueConfig:
    try:
        strategy = Strategy(entry.get("strategy", "rrmemory"))
    except ValueError:
        raise ValueError(f"queue {entry.get('name')!r}: unknown strategy {entry.get('strategy')!r}") from None
    return QueueConfig(
        name=str(entry["name"]),
        strategy=strategy,
        timeout=float(entry.get("timeout", 15)),
        retry=float(entry.get("retry", 2)),
        wrapuptime=float(entry.get("wrapuptime", 0)),
        weight=int(entry.get("weight", 0)),
        members=tuple(members),
    )


def load_agents_file(path: str | Path) -> dict[str, Any]:
    """Read an agents file into ``queues`` and ``agents`` for :class:`SimConfig`."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    agents = tuple(
        AgentConfig(
            interface=str(a["interface"]),
            name=str(a.get("name", a["interface"])),
            queues=tuple(a.get("queues", ())),
            penalty=int(a.get("penalty", 0)),
            answer_delay=float(a.get("answer_delay", 2.0)),
            aht=float(a.get("aht", 60.0)),
            noanswer=bool(a.get("noanswer", False)),
        )
        for a in data.get("agent", [])
    )
    queue_entries = data.get("queue") or [
        {"name": q.name, "strategy": q.strategy.value, "weight": q.weight} for q in default_queues()
    ]
    return {"queues": tuple(_queue_from(q, []) for q in queue_entries), "agents": agents}


def queue_configs(config: SimConfig) -> list[QueueConfig]:
    """Queues with their static members filled in from the agents."""
    result = []
    for q in config.queues:
        members = list(q.members) + [
            MemberConfig(a.interface, a.name, a.penalty) for a in config.agents if q.name in a.queues
        ]
        result.append(replace(q, members=tuple(members)))
    return result
