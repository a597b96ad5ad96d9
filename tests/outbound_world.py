"""Fixtures' helpers for the outbound tests: customers, accounts, a simulated PBX and the service."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert

from cti.agents.accounts import Agent
from cti.ami.service import AmiService
from cti.bus import InMemoryBus
from cti.config import AmiConfig
from cti.db.engine import sessionmaker
from cti.db.tables import agents, customer_phones, customers
from cti.outbound import repository as repo
from cti.outbound.scheduler import OutboundScheduler
from cti.outbound.service import OutboundService
from cti.sim.config import AgentConfig, SimConfig
from cti.sim.pbx import SimPbx

UTC = timezone.utc
#: Tuesday 2026-11-24 10:00 in Shanghai
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> float:
        return self.now.timestamp()

    def advance(self, **kw: float) -> None:
        from datetime import timedelta
        self.now += timedelta(**kw)


@dataclass
class World:
    sm: Any
    svc: OutboundService
    clock: Clock
    accounts: dict[str, Agent] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)
    phones: dict[str, str] = field(default_factory=dict)
    bus: Any = None
    pbx: Any = None
    ami: Any = None
    sched: Any = None


async def seed(sm: Any) -> tuple[dict[str, Agent], dict[str, int], dict[str, str]]:
    now = T0
    accounts: dict[str, Agent] = {}
    people = [("alice", "agent", "PJSIP/1001", False), ("bob", "agent", "PJSIP/1002", False),
              ("wang", "agent", "PJSIP/2001", True), ("sup", "supervisor", None, False),
              ("dealer1", "agent", None, False), ("dealer2", "agent", None, False)]
    cust = {"zhang": ("Zhang", "D-SH-01", "+8613800000001"), "li": ("Li", "D-BJ-02", "+8613800000002"),
            "zhao": ("Zhao", None, "+8613800000003")}
    async with sm() as session, session.begin():
        conn = await session.connection()
        for name, role, iface, expert in people:
            aid = (await conn.execute(insert(agents).values(username=name, display_name=name.title(), role=role,
                                                            interface=iface, experienced=expert, created_at=now)
                                      .returning(agents.c.id))).scalar_one()
            accounts[name] = Agent(aid, name, name.title(), role, iface, "zh", expert, True)
        ids: dict[str, int] = {}
        for key, (family, dealer, phone) in cust.items():
            cid = (await conn.execute(insert(customers).values(family_name=family, given_name="Wei", title="先生",
                                                               dealer=dealer, created_at=now, updated_at=now)
                                      .returning(customers.c.id))).scalar_one()
            await conn.execute(insert(customer_phones).values(customer_id=cid, e164=phone, kind="mobile"))
            ids[key] = cid
        await repo.add_dealer(conn, "D-SH-01", "Shanghai Machinery", "Shanghai", now=now)
        await repo.add_dealer(conn, "D-BJ-02", "Beijing Heavy", "Beijing", now=now)
        await repo.add_dealer_contact(conn, accounts["dealer1"].id, "D-SH-01", now=now)
        await repo.add_dealer_contact(conn, accounts["dealer2"].id, "D-BJ-02", now=now)
    return accounts, ids, {k: v[2] for k, v in cust.items()}


class SimWorld:
    """A simulated PBX, a real AmiService connected to it, the outbound service and its scheduler."""

    def __init__(self, engine: Any, *, agents: tuple[AgentConfig, ...] | None = None) -> None:
        self.engine = engine
        self.agents = agents

    async def __aenter__(self) -> World:
        kw = {} if self.agents is None else {"agents": self.agents}
        config = SimConfig(ami_port=0, agi_port=free_port(), speed=50, seed=5, originate_answer_delay=1.0,
                           dynamic_aht=5.0, **kw)
        self.pbx = SimPbx(config)
        await self.pbx.__aenter__()
        self.bus = InMemoryBus()
        self.ami = AmiService(AmiConfig(port=self.pbx.ami_port, username="cti", secret="cti-secret",
                                        reconnect_min=0.05), self.bus, None)
        await self.ami.start()
        await self.ami.wait_ready()
        sm = sessionmaker(self.engine)
        clock = Clock()
        svc = OutboundService(sm, self.ami, self.bus, clock=clock, originate_timeout_ms=10000)
        self.sched = OutboundScheduler(svc, self.bus, interval=3600)
        await self.sched.start()
        accounts, ids, phones = await seed(sm)
        return World(sm, svc, clock, accounts, ids, phones, self.bus, self.pbx, self.ami, self.sched)

    async def __aexit__(self, *exc: Any) -> None:
        await self.sched.stop()
        await self.ami.stop()
        await self.pbx.__aexit__(*exc)


async def wait_status(sm: Any, attempt_id: int, *statuses: str, timeout: float = 30.0) -> str:
    """Poll the attempt row until it reaches one of ``statuses`` (AssertionError naming the last one)."""
    last: list[str] = []

    async def loop() -> str:
        while True:
            async with sm() as session:
                row = await repo.get_attempt(await session.connection(), attempt_id)
            last[:] = [row.status]
            if row.status in statuses:
                return row.status
            await asyncio.sleep(0.05)
    try:
        return await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"attempt {attempt_id} stayed {last} (waited for {statuses})") from None
