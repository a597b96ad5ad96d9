"""AmiService: the AMI part of the daemon, built and owned by the composition root.

    ami = AmiService(settings.ami, bus, sessionmaker)
    await ami.start()        # AmiAuthError if the PBX refuses ami.username/ami.secret
    ami.state.snapshot(now)  # live calls, agents, queues
    await ami.queue_pause("PJSIP/1001", True, reason="lunch")
    await ami.stop()

It wires: the link (one reader, events in arrival order) -> normalization -> LiveState ->
bus messages + call records (recorder task). It also consumes ``agi.decision`` from the
bus to attach the routing decision to the call.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import structlog
from sqlalchemy.ext.asyncio import async_sessionmaker

from cti.ami.events import USED_EVENTS, missing_fields, normalize
from cti.ami.link import AmiActionError, AmiLink
from cti.ami.protocol import AmiMessage
from cti.bus import EventBus
from cti.calls.live import LiveState
from cti.calls.recorder import CallRecorder
from cti.config import AmiConfig

log = structlog.get_logger(__name__)


class AmiService:
    def __init__(
        self,
        config: AmiConfig,
        bus: EventBus,
        sessionmaker: async_sessionmaker | None = None,
        *,
        clock: Callable[[], float] = time.time,
        flush_interval: float = 0.5,
        stable_after: float | None = None,
    ) -> None:
        self.config = config
        self.bus = bus
        self.clock = clock
        self.server = config.server
        self._state = LiveState(config.server)
        self.recorder = CallRecorder(sessionmaker, flush_interval=flush_interval) if sessionmaker else None
        kw: dict[str, Any] = {} if stable_after is None else {"stable_after": stable_after}
        self.link = AmiLink(config, on_event=self._on_event, on_resync=self._on_resync, on_link=self._on_link,
                            clock=clock, **kw)
        self._tasks: list[asyncio.Task[Any]] = []
        self.handler_errors = 0
        #: events ignored because a key header (Uniqueid, Queue, Interface) was missing
        self.incomplete_events = 0
        self._incomplete_warned: set[str] = set()

    # -- public --------------------------------------------------------------------
    @property
    def state(self) -> LiveState:
        return self._state

    @property
    def connected(self) -> bool:
        return self.link.connected

    async def start(self) -> None:
        """Restore open calls, start the recorder and the decision consumer, connect (fail loud on a bad login)."""
        if self.recorder is not None:
            restored = await self.recorder.load_open(self.server)
            if restored:
                self._state.calls.restore(restored)
                log.info("ami.calls_restored", count=len(restored), server=self.server)
            self._tasks.append(asyncio.create_task(self.recorder.run(), name="call-recorder"))
        sub = self.bus.subscribe("agi.decision", maxsize=10_000)
        self._tasks.append(asyncio.create_task(self._consume_decisions(sub), name="ami-decisions"))
        if self.config.enabled:
            try:
                await self.link.start()
            except BaseException:
                await self.stop()
                raise

    async def stop(self) -> None:
        await self.link.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        if self.recorder is not None:
            await self.recorder.close()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until connected and resynced."""
        await asyncio.wait_for(self.link.ready.wait(), timeout)

    # -- agent actions ---------------------------------------------------------------
    async def queue_add(self, queue: str, interface: str, member_name: str | None = None, penalty: int = 0,
                        *, paused: bool = False, reason: str | None = None,
                        state_interface: str | None = None) -> AmiMessage:
        """Log an agent's phone into a queue (skill group). AmiActionError carries Asterisk's Message."""
        return await self.link.action("QueueAdd", {
            "Queue": queue, "Interface": interface, "MemberName": member_name, "Penalty": int(penalty),
            "Paused": paused, "Reason": reason if paused else None, "StateInterface": state_interface})

    async def queue_remove(self, queue: str, interface: str) -> AmiMessage:
        return await self.link.action("QueueRemove", {"Queue": queue, "Interface": interface})

    async def queue_pause(self, interface: str, paused: bool, reason: str | None = None,
                          queue: str | None = None) -> AmiMessage:
        """Pause/unpause in one queue, or in every queue when ``queue`` is None."""
        return await self.link.action("QueuePause", {"Interface": interface, "Paused": bool(paused),
                                                     "Queue": queue, "Reason": reason})

    async def queue_penalty(self, interface: str, penalty: int, queue: str | None = None) -> AmiMessage:
        return await self.link.action("QueuePenalty", {"Interface": interface, "Penalty": int(penalty),
                                                       "Queue": queue})

    async def originate(self, channel: str, *, exten: str | None = None, context: str | None = None,
                        priority: int = 1, application: str | None = None, data: str | None = None,
                        caller_id: str | None = None, timeout_ms: int = 30000,
                        variables: dict[str, str] | None = None, account: str | None = None) -> AmiMessage:
        """Click-to-dial. Sent once, never re-sent after a reconnect (``AmiDisconnectedError`` instead).

        Asynchronous on the PBX (``Async: true``): the answer means "queued"; the outcome
        arrives as the ``call.originate_result`` bus message with the same ``action_id``.
        """
        if (exten is None) == (application is None):
            raise ValueError("originate needs exactly one of exten (+context) or application")
        headers: dict[str, Any] = {"Channel": channel, "Timeout": int(timeout_ms), "CallerID": caller_id,
                                   "Async": True, "Account": account}
        if exten is not None:
            headers.update(Context=context, Exten=exten, Priority=priority)
        else:
            headers.update(Application=application, Data=data)
        if variables:
            headers["Variable"] = [f"{k}={v}" for k, v in variables.items()]
        return await self.link.action("Originate", headers)

    async def command(self, command: str) -> list[str]:
        """A CLI command's output lines (needs the ``command`` write class)."""
        resp = await self.link.action("Command", {"Command": command})
        return resp.getall("Output")

    # -- plumbing --------------------------------------------------------------------
    def _on_event(self, msg: AmiMessage, now: float) -> None:
        e = normalize(msg, self.server)
        if e is None:
            if msg.name in USED_EVENTS:
                self._note_incomplete(msg)
            return
        if msg.name == "OriginateResponse":
            self.bus.publish("call.originate_result", {"server": self.server, "action_id": e.action_id,  # type: ignore[union-attr]
                                                       "response": e.response, "uniqueid": e.uniqueid,  # type: ignore[union-attr]
                                                       "channel": e.channel, "reason": e.reason, "at": now})  # type: ignore[union-attr]
            return
        try:
            changes = self._state.apply(e, now)
        except Exception:
            self.handler_errors += 1
            log.exception("ami.state_error", ami_event=msg.name, uniqueid=msg.get("Uniqueid") or None)
            return
        self._emit(changes, now)

    def _on_resync(self, msgs: list[AmiMessage], now: float) -> None:
        items = []
        for m in msgs:
            e = normalize(m, self.server)
            if e is not None:
                items.append(e)
            elif m.name in USED_EVENTS:
                self._note_incomplete(m)
        self._emit(self._state.resync(items, now), now)

    def _note_incomplete(self, msg: AmiMessage) -> None:
        """Count an event ignored for a missing key header; warn once per event name."""
        missing = missing_fields(msg)
        if not missing:
            return  # ignored for another reason (dialplan class)
        self.incomplete_events += 1
        if msg.name in self._incomplete_warned:
            return
        self._incomplete_warned.add(msg.name)
        log.warning("ami.event_incomplete", ami_event=msg.name, missing=list(missing), server=self.server,
                    uniqueid=msg.get("Uniqueid") or None, queue=msg.get("Queue") or None,
                    interface=msg.get("Interface") or msg.get("Location") or None,
                    hint="ignored (it would create a call, agent or queue named ''); "
                         "later ones of this event are only counted")

    def _on_link(self, state: str, info: dict[str, Any]) -> None:
        self.bus.publish("ami.link", {"server": self.server, "state": state, "at": self.clock(), **info})

    def _emit(self, changes: list[tuple[str, dict[str, Any]]], now: float) -> None:
        publish = self.bus.publish
        for topic, payload in changes:
            publish(topic, payload)
            if topic == "call.ended":
                log.info("call.ended", server=payload["server"], uniqueid=payload["uniqueid"],
                         outcome=payload["outcome"], queue=payload["queue"], agent=payload["agent_interface"],
                         wait_s=payload["wait_s"], talk_s=payload["talk_s"], transfers=payload["transfers"])
        dirty = self._state.calls.take_dirty()
        if dirty and self.recorder is not None:
            for call in dirty:
                self.recorder.submit(call.record(now))

    async def _consume_decisions(self, sub: Any) -> None:
        async for msg in sub:
            if msg.payload.get("server") not in (None, self.server):
                continue  # another Asterisk's call (several AMI endpoints share one bus)
            try:
                self._emit(self._state.note_decision(msg.payload, self.clock()), self.clock())
            except Exception:
                log.exception("ami.decision_error", uniqueid=msg.payload.get("uniqueid"))


__all__ = ["AmiService", "AmiActionError"]
