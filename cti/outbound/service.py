"""OutboundService: follow-ups from events and by hand, preview, dial through AMI, outcomes, leads.

    svc = OutboundService(sessionmaker, ami, bus, policy=ContactPolicy(), clock=time.time)
    await svc.handle_event(BusinessEvent("repair.completed", customer_id, "RO-17", now))
    preview = await svc.preview(account, followup_id)        # customer, reasons, phones + decisions
    dial = await svc.dial(account, followup_id, "+86138...")  # DialBlocked(decision) says why not
    await svc.record_outcome(account, dial["attempt_id"], "reached", notes="ok", new_need="excavator")

Records match by construction: the outcome is keyed by the attempt id the dial returned; the
customer, follow-up and lead are read from that attempt row, never from the request. The dialed
number is checked to belong to the follow-up's customer at dial time, in the same transaction
that claims the dial. ``account`` is any object with ``id``, ``username``, ``role``, ``interface``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.customers.scope import Scope, scope_of
from cti.db.tables import agent_skills, customers, outbound_followups
from cti.outbound import repository as repo
from cti.outbound.attribution import CreditRules, credit_lead
from cti.outbound.policy import ContactPolicy, DialDecision, after_no_answer, check_dial
from cti.outbound.rules import DEFAULT_RULES, BusinessEvent, FollowupRule, requests_for

log = structlog.get_logger(__name__)

SUPERVISORS = ("supervisor", "admin")
#: bus topic: the agent's console shows the follow-up while its phone rings (the outbound "pop")
OUTBOUND_DIALING = "outbound.dialing"
#: bus topic: the dial's fate {attempt_id, followup_id, agent_id, status: connected|failed, failure, at}
OUTBOUND_DIAL_RESULT = "outbound.dial_result"


class DialBlocked(repo.OutboundError):
    def __init__(self, decision: DialDecision) -> None:
        super().__init__(f"dial blocked: {decision.explain()}")
        self.decision = decision


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


class OutboundService:
    def __init__(self, sessionmaker: async_sessionmaker, ami: Any = None, bus: Any = None, *,
                 policy: ContactPolicy | None = None, rules: tuple[FollowupRule, ...] = DEFAULT_RULES,
                 credits: CreditRules | None = None, clock: Callable[[], float] = time.time,
                 context: str = "cti-outbound", originate_timeout_ms: int = 30000) -> None:
        self.sm = sessionmaker
        self.ami = ami
        self.bus = bus
        self.policy = policy or ContactPolicy()
        self.rules = rules
        self.credits = credits or CreditRules()
        self.clock = clock
        self.context = context
        self.originate_timeout_ms = originate_timeout_ms
        #: action_id -> attempt_id of Originates sent by this process
        self._inflight: dict[str, int] = {}
        #: OriginateResponse results that arrived before originate() returned
        self._early: dict[str, dict[str, Any]] = {}

    def now(self) -> datetime:
        return utc(self.clock())

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(topic, payload)

    # -- planning ------------------------------------------------------------------------------
    async def create(self, customer_id: int, reason: str, *, due_at: datetime | None = None,
                     due_until: datetime | None = None, owner_id: int | None = None, skill: str | None = None,
                     source: str = "manual", source_key: str | None = None, detail: str = "",
                     campaign_id: int | None = None) -> repo.AddResult:
        if not reason.strip():
            raise repo.OutboundError("reason: required")
        now = self.now()
        async with self.sm() as session, session.begin():
            res = await repo.add_followup(await session.connection(), customer_id, reason.strip()[:500], now=now,
                                          due_at=due_at or now, due_until=due_until, source=source,
                                          source_key=source_key, detail=detail[:2000], owner_id=owner_id, skill=skill,
                                          campaign_id=campaign_id)
        log.info("outbound.followup_added", followup_id=res.followup_id, customer_id=customer_id, created=res.created,
                 duplicate=res.duplicate, source=source)
        return res

    async def handle_event(self, event: BusinessEvent) -> list[repo.AddResult]:
        """Apply the rules to a business event: new follow-ups, or reasons merged into the open one."""
        out = []
        for req in requests_for(event, self.rules):
            try:
                out.append(await self.create(req.customer_id, req.reason, due_at=req.due_at, due_until=req.due_until,
                                             skill=req.skill, source=req.source, source_key=req.source_key,
                                             detail=req.detail))
            except repo.NotFound:
                log.warning("outbound.event_unknown_customer", kind=event.kind, customer_id=event.customer_id)
        return out

    # -- the console ---------------------------------------------------------------------------
    async def _check_may_work(self, conn: Any, account: Any, row: Any) -> Scope:
        """A follow-up is for its customer's scope (a dealer contact: its dealer's customers) and, among
        staff, for its owner, the owner's group (the follow-up's skill) or a supervisor."""
        scope = await scope_of(conn, account)
        await scope.check(conn, row.customer_id)
        if scope.is_dealer or account.role in SUPERVISORS:
            return scope
        skills = set((await conn.execute(select(agent_skills.c.queue)
                                          .where(agent_skills.c.agent_id == account.id))).scalars())
        if not repo.may_work(row, account.id, skills):
            raise repo.Forbidden(f"follow-up {row.id} is another agent's (its owner, their group or a supervisor)")
        return scope

    async def preview(self, account: Any, followup_id: int) -> dict[str, Any]:
        """What the agent sees before dialing: the follow-up, the customer, each phone with the policy's verdict."""
        now = self.now()
        async with self.sm() as session:
            conn = await session.connection()
            row = await repo.get_followup(conn, followup_id)
            await self._check_may_work(conn, account, row)
            reasons = (await repo.reasons_of(conn, [followup_id]))[followup_id]
            cust = (await conn.execute(select(customers).where(customers.c.id == row.customer_id))).one()
            phones = []
            for e164 in await repo.customer_phones_of(conn, row.customer_id):
                decision = check_dial(await repo.dial_context(conn, followup_id, e164, now=now), self.policy, now)
                phones.append({"e164": e164, "allowed": decision.allowed,
                               "blocked": [b.public() for b in decision.blocks]})
        return {"followup": repo.followup_dict(row, reasons),
                "customer": {"id": cust.id, "family_name": cust.family_name, "given_name": cust.given_name,
                             "title": cust.title, "language": cust.language, "vip": cust.vip, "dealer": cust.dealer},
                "phones": phones}

    async def next_for(self, account: Any, limit: int = 10) -> list[dict[str, Any]]:
        """The agent's next follow-ups (due, theirs or their skills'; a dealer contact: their dealer's)."""
        now = self.now()
        async with self.sm() as session:
            conn = await session.connection()
            scope = await scope_of(conn, account)
            skills = (await conn.execute(select(agent_skills.c.queue).where(agent_skills.c.agent_id == account.id))).scalars()
            rows = await repo.due_followups(conn, agent_id=account.id, skills=list(skills), now=now, scope=scope,
                                            limit=limit, include_future=scope.is_dealer)
        return [await self.preview(account, r.id) for r in rows]

    # -- dialing ---------------------------------------------------------------------------------
    async def dial(self, account: Any, followup_id: int, phone_e164: str | None = None) -> dict[str, Any]:
        """Check the policy on fresh data, claim the dial, send one Originate (agent's phone first)."""
        if self.ami is None:
            raise repo.OutboundError("no PBX connection")
        now = self.now()
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            # Two clicks on one follow-up: the second waits here for the first to commit (PostgreSQL
            # row lock; SQLite serializes writers anyway), then the policy sees the dial in progress.
            # Without it, both insert their attempt and PostgreSQL aborts one with a deadlock.
            await conn.execute(
                select(outbound_followups.c.id).where(outbound_followups.c.id == followup_id).with_for_update()
            )
            row = await repo.get_followup(conn, followup_id)
            if (await self._check_may_work(conn, account, row)).is_dealer:
                raise repo.Forbidden("dealer contacts do not dial from cti")
            if not getattr(account, "interface", None):
                raise repo.OutboundError("your account has no phone interface")
            if phone_e164 is None:
                phones = await repo.customer_phones_of(conn, row.customer_id)
                phone_e164 = phones[0] if phones else None
            ctx = await repo.dial_context(conn, followup_id, phone_e164, now=now)
            decision = check_dial(ctx, self.policy, now)
            if not decision.allowed:
                log.info("outbound.dial_blocked", followup_id=followup_id, customer_id=ctx.customer_id,
                         agent=account.username, blocked=list(decision.codes))
                raise DialBlocked(decision)
            try:
                attempt_id = await repo.start_attempt(conn, ctx, agent_id=account.id, now=now)
            except IntegrityError:  # a concurrent dial took the pending slot
                raise repo.Conflict(f"follow-up {followup_id} is being dialed already") from None
        bound = log.bind(followup_id=followup_id, attempt_id=attempt_id, customer_id=ctx.customer_id)
        assert ctx.phone_e164 is not None
        exten = ctx.phone_e164.lstrip("+")
        try:
            resp = await self.ami.originate(
                account.interface, exten=exten, context=self.context, priority=1,
                caller_id=f'"Follow-up {followup_id}" <{exten}>', timeout_ms=self.originate_timeout_ms,
                variables={"CTI_FOLLOWUP_ID": str(followup_id), "CTI_ATTEMPT_ID": str(attempt_id)})
        except Exception as exc:  # AmiActionError (Asterisk refused), not connected, no answer: never re-sent
            bound.warning("outbound.originate_failed", error=str(exc))
            async with self.sm() as session, session.begin():
                await repo.fail_attempt(await session.connection(), attempt_id, f"Originate: {exc}", self.now())
            raise repo.OutboundError(f"the call could not be placed: {exc}") from None
        action_id = resp.get("ActionID")
        self._inflight[action_id] = attempt_id  # synchronously: the result consumer may run at the next await
        early = self._early.pop(action_id, None)
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            await repo.set_attempt(conn, attempt_id, action_id=action_id, status="queued")
        bound.info("outbound.dialing", agent=account.username, action_id=action_id)
        self._publish(OUTBOUND_DIALING, {"agent_id": account.id, "interface": account.interface,
                                         "followup_id": followup_id, "attempt_id": attempt_id,
                                         "customer_id": ctx.customer_id, "reasons": list(ctx.reasons),
                                         "phone": ctx.phone_e164, "at": self.clock()})
        if early is not None:
            await self.on_originate_result(early)
        return {"attempt_id": attempt_id, "action_id": action_id, "followup_id": followup_id,
                "customer_id": ctx.customer_id, "phone": ctx.phone_e164, "reasons": list(ctx.reasons)}

    async def on_originate_result(self, payload: dict[str, Any]) -> None:
        """``call.originate_result``: the agent's phone answered (customer being dialed) or not."""
        action_id = payload.get("action_id") or ""
        attempt_id = self._inflight.pop(action_id, None)
        if attempt_id is None:
            if action_id.startswith("cti-"):
                self._early[action_id] = payload
                while len(self._early) > 1000:
                    self._early.pop(next(iter(self._early)))
            return
        now = self.now()
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            row = await repo.get_attempt(conn, attempt_id)
            if payload.get("response") == "Success":
                status, failure = "connected", None
                await repo.set_attempt(conn, attempt_id, status="connected", uniqueid=payload.get("uniqueid"))
            else:
                status, failure = "failed", f"agent's phone did not answer (reason {payload.get('reason')})"
                await repo.fail_attempt(conn, attempt_id, failure, now)
        log.info("outbound.dial_result", attempt_id=attempt_id, followup_id=row.followup_id, status=status,
                 uniqueid=payload.get("uniqueid"))
        self._publish(OUTBOUND_DIAL_RESULT, {"attempt_id": attempt_id, "followup_id": row.followup_id,
                                             "agent_id": row.agent_id, "status": status, "failure": failure,
                                             "at": self.clock()})

    # -- the outcome form --------------------------------------------------------------------------
    async def record_outcome(self, account: Any, attempt_id: int, outcome: str, *, notes: str = "",
                             new_need: str | None = None, callback_at: datetime | None = None,
                             opt_out: bool = False) -> dict[str, Any]:
        """Close the dial: notes and lead go to the attempt's own customer and follow-up."""
        repo.check_outcome(outcome)
        now = self.now()
        notes = notes.replace("\x00", "")[:4000]
        async with self.sm() as session, session.begin():
            conn = await session.connection()
            att = await repo.get_attempt(conn, attempt_id)
            if att.agent_id != account.id and account.role not in SUPERVISORS:
                raise repo.Forbidden(f"call attempt {attempt_id} is another agent's call")
            if att.status == "done":
                raise repo.Conflict(f"call attempt {attempt_id} already has its outcome")
            fu = await repo.get_followup(conn, att.followup_id)
            contact = outcome in repo.CONTACT_OUTCOMES
            await repo.set_attempt(conn, attempt_id, status="done", outcome=outcome, notes=notes, contact=contact,
                                   ended_at=now)
            attempts = fu.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "pending_attempt_id": None, "updated_at": now}
            status = "open"
            if outcome == "no_answer":
                retry = after_no_answer(attempts, self.policy, now)
                if retry is None:
                    status = "exhausted"
                else:
                    values["next_attempt_at"] = retry
            elif outcome == "call_back_later":
                values.update(due_at=callback_at or now + timedelta(days=1), next_attempt_at=None, attempts=0)
            else:
                status = "done"
            await conn.execute(update(outbound_followups).where(outbound_followups.c.id == fu.id).values(**values))
            if status != "open":
                await repo.close_followup(conn, fu.id, status=status, outcome=outcome, now=now, by=account.id)
            if outcome == "wrong_number":  # a stranger answered: never call that number again
                await repo.add_dnc(conn, customer_id=att.customer_id, e164=att.phone_e164,
                                   reason=f"wrong number (follow-up {fu.id})", recorded_by=account.username,
                                   recorded_by_id=account.id, now=now)
            if opt_out:
                await repo.add_dnc(conn, customer_id=att.customer_id, e164=None, reason=f"asked during follow-up {fu.id}",
                                   recorded_by=account.username, recorded_by_id=account.id, now=now)
            lead_id = None
            if new_need and new_need.strip():
                dealer = (await conn.execute(select(customers.c.dealer)
                                             .where(customers.c.id == att.customer_id))).scalar()
                expert = await repo.finder_is_expert(conn, account.id)
                credits = credit_lead(dealer, account.username, expert, self.credits)
                lead_id = await repo.add_lead(conn, customer_id=att.customer_id, dealer=dealer,
                                              need=new_need.strip()[:2000], found_by=account.id, followup_id=fu.id,
                                              attempt_id=attempt_id, credits=credits, now=now)
        log.info("outbound.outcome", attempt_id=attempt_id, followup_id=fu.id, customer_id=att.customer_id,
                 outcome=outcome, followup_status=status, lead_id=lead_id, uniqueid=att.uniqueid)
        if lead_id is not None:
            self._publish("outbound.lead", {"lead_id": lead_id, "customer_id": att.customer_id, "at": self.clock()})
        return {"attempt_id": attempt_id, "followup_id": fu.id, "customer_id": att.customer_id, "outcome": outcome,
                "followup_status": status, "lead_id": lead_id}

    async def release_stale(self, max_age: timedelta | None = None) -> int:
        now = self.now()
        age = max_age or timedelta(milliseconds=self.originate_timeout_ms) + timedelta(minutes=2)
        async with self.sm() as session, session.begin():
            n = await repo.release_stale(await session.connection(), older_than=now - age, now=now)
        if n:
            log.warning("outbound.stale_dials_released", count=n)
        return n


