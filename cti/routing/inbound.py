"""The 800 line's FastAGI routes: recognize the caller, decide the queue, pick the greeting.

``incoming`` runs once per call (AGI(agi://CTI:4573/incoming)); ``ivr`` runs when the dialplan
asked the caller for a digit (AGI(agi://CTI:4573/ivr,DIGIT)). Both return the channel variables
of the contract; :meth:`InboundRoutes.fallback` is the safe default the FastAGI server uses when
anything fails or the deadline passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Protocol

import structlog

from cti.customers.callerid import e164_candidate, normalize
from cti.customers.lookup import CallerLookup
from cti.routing.rules import CallerFacts, RouteDecision, RoutingRules, resolve_route

log = structlog.get_logger(__name__)


class GreetingRequester(Protocol):
    def request(self, customer_id: int, family_name: str, given_name: str, title: str, language: str) -> Any: ...


@dataclass(slots=True)
class Decision:
    """One routing decision, published for the call tracker and metrics (no personal data).
    Read-only by convention: not ``frozen``, whose ``__init__`` costs a setattr call per field
    on every call."""

    uniqueid: str
    caller_number: str
    caller_e164: str | None
    customer_id: int | None
    dialed: str
    queue: str
    priority: int
    action: str
    route: str
    language: str
    ivr_choice: str | None
    at: float

    def payload(self, server: str) -> dict[str, Any]:
        """The ``agi.decision`` bus payload (cti/bus/topics.py); a flat copy, cheap on the hot path."""
        return {
            "server": server,
            "uniqueid": self.uniqueid,
            "caller_number": self.caller_number,
            "caller_e164": self.caller_e164,
            "customer_id": self.customer_id,
            "dialed": self.dialed,
            "queue": self.queue,
            "priority": self.priority,
            "action": self.action,
            "route": self.route,
            "lang": self.language,
            "ivr_choice": self.ivr_choice,
            "at": self.at,
        }


def _dialed(env: Any) -> str:
    """The number dialed: the extension in cti-inbound, else the DNID; '' when neither is a number."""
    for candidate in (env.extension, env.dnid):
        if candidate and candidate not in ("s", "unknown") and candidate.lstrip("+").isdigit():
            return candidate
    return ""


class InboundRoutes:
    """Route handlers for the FastAGI server; transport-free apart from the env accessors."""

    def __init__(
        self,
        lookup: CallerLookup,
        rules: RoutingRules,
        *,
        region: str,
        sound_prefix: str,
        greetings: GreetingRequester | None = None,
        on_decision: Callable[[Decision], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._lookup = lookup
        self._rules = rules
        self._region = region
        self._prefix = sound_prefix.rstrip("/")
        self._greetings = greetings
        self._on_decision = on_decision
        self._clock = clock

    @property
    def rules(self) -> RoutingRules:
        return self._rules

    def set_rules(self, rules: RoutingRules) -> None:
        """Hot swap: the next call uses ``rules`` (one reference assignment; calls in flight keep theirs)."""
        self._rules = rules

    def routes(self) -> dict[str, Callable[[Any], Any]]:
        return {"incoming": self.incoming, "ivr": self.ivr}

    async def incoming(self, env: Any) -> Mapping[str, str]:
        return await self._decide(env, None)

    async def ivr(self, env: Any) -> Mapping[str, str]:
        args = env.args
        digit = (args[0] if args else "").strip()[:4]
        return await self._decide(env, digit)

    async def _decide(self, env: Any, ivr_choice: str | None) -> Mapping[str, str]:
        raw, pres = env.callerid, env.callingpres
        # Most known callers send their number as plain digits: look that key up first and skip
        # phonenumbers' parse (e164_candidate says why a hit is always the right caller).
        e164 = e164_candidate(raw, self._region, pres)
        facts: CallerFacts | None = await self._lookup.lookup(e164) if e164 else None
        shown = raw
        if facts is None:
            number = normalize(raw, self._region, pres)
            shown = number.raw
            if number.e164 is not None and number.e164 != e164:
                facts = await self._lookup.lookup(number.e164)
            e164 = number.e164
        rules = self._rules  # one snapshot per call, even if set_rules() runs meanwhile
        dialed = _dialed(env)
        decision = resolve_route(facts, dialed, rules, self._clock(), ivr_choice)
        greeting = self._greeting(facts, decision.language)
        self._publish(env, shown, e164, dialed, facts, decision, ivr_choice)
        return self._variables(decision, greeting, facts.customer_id if facts else None)

    def _greeting(self, facts: CallerFacts | None, language: str) -> str:
        if facts is None:
            return f"{self._prefix}/greet-generic-{language}"
        if facts.greeting:
            return f"{self._prefix}/{facts.greeting}"
        if self._greetings is not None:  # not synthesized yet: generic now, personal next time
            self._greetings.request(facts.customer_id, facts.family_name, facts.given_name, facts.title, facts.language)
        return f"{self._prefix}/greet-generic-{language}"

    @staticmethod
    def _variables(decision: RouteDecision, greeting: str, customer_id: int | None) -> dict[str, str]:
        return {
            "CTI_QUEUE": decision.queue,
            "CTI_PRIORITY": str(decision.priority),
            "CTI_GREETING": greeting,
            "CTI_CUSTOMER_ID": "" if customer_id is None else str(customer_id),
            "CTI_LANG": decision.language,
            "CTI_ACTION": decision.action,
            "CTI_ROUTE": decision.route,
        }

    def fallback(self, env: Any) -> dict[str, str]:
        """The configured default route: used on errors and timeouts. Never raises."""
        rules = self._rules
        return {
            "CTI_QUEUE": rules.default_queue,
            "CTI_PRIORITY": str(rules.base_priority),
            "CTI_GREETING": f"{self._prefix}/greet-generic-{rules.default_language}",
            "CTI_CUSTOMER_ID": "",
            "CTI_LANG": rules.default_language,
            "CTI_ACTION": "queue",
            "CTI_ROUTE": "fallback",
        }

    def _publish(
        self,
        env: Any,
        raw: str,
        e164: str | None,
        dialed: str,
        facts: CallerFacts | None,
        d: RouteDecision,
        ivr_choice: str | None,
    ) -> None:
        if self._on_decision is None:
            return
        try:
            self._on_decision(
                Decision(
                    uniqueid=env.uniqueid,
                    caller_number=raw,
                    caller_e164=e164,
                    customer_id=facts.customer_id if facts else None,
                    dialed=dialed,
                    queue=d.queue,
                    priority=d.priority,
                    action=d.action,
                    route=d.route,
                    language=d.language,
                    ivr_choice=ivr_choice,
                    at=self._clock().timestamp(),
                )
            )
        except Exception:  # noqa: BLE001 - a subscriber must never break a call
            log.exception("decision_publish_failed", uniqueid=env.uniqueid)
