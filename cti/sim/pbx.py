"""The simulated Asterisk: channels, the 800-line dialplan, app_queue and agents, over AMI + FastAGI.

One :class:`SimPbx` owns an AMI server (``cti.sim.ami_server``), the pure queue model
(``cti.sim.queue``), a clock that may run faster than real time (``cti.sim.clock``) and one task
per call. Every state change is broadcast as the AMI events the captures show for it, in the same
order and with the same fields (``cti.sim.call_events``).

The dialplan it follows (the contract of ``dialplans/``): the call enters ``cti-inbound`` at the
dialed number; ``Answer`` (0.5 s); ``AGI(agi://CTI:4573/incoming)``; if ``CTI_QUEUE`` is empty the
default queue; ``Playback(${CTI_GREETING})``; ``CTI_ACTION=ivr``: the caller presses a digit and
``AGI(agi://CTI:4573/ivr,<digit>)`` routes again; ``afterhours``: a message and hang-up; then
``QUEUE_PRIO=${CTI_PRIORITY}`` and ``Queue(${CTI_QUEUE})``.

Channel naming: callers arrive on ``<trunk>-<seq>`` (default ``PJSIP/trunk-0000000a``, a SIP
trunk); with ``trunk = "Local/8005551234@from-pstn"`` they are named like the captures' ``;2``
legs. Agent legs are ``PJSIP/1001-0000000b`` for ``PJSIP/1001`` members and
``Local/1001@agents-0000000b;1`` for ``Local/1001@agents/n`` members.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import structlog

from cti.sim import call_events as ev
from cti.sim.agi_client import AgiResult, environment, run_agi
from cti.sim.ami_format import Value
from cti.sim.ami_server import AmiServer
from cti.sim.channels import STATE_DOWN, STATE_RING, STATE_RINGING, STATE_UP, Channel, IdAllocator, channel_name
from cti.sim.clock import SimClock
from cti.sim.config import AgentConfig, SimConfig, queue_configs
from cti.sim.queue import Member, QueueSystem, Ring

log = structlog.get_logger(__name__)

Headers = list[tuple[str, Value]]

CALL_STATES = ("started", "up", "agi_done", "queued", "ringing", "answered", "finished")


@dataclass
class CallHandle:
    """A simulated inbound call; tests await its progress with :meth:`wait`."""

    callerid: str
    name: str
    dnid: str
    channel: Channel
    patience: float
    ivr_digit: Optional[str] = None
    talk_time: Optional[float] = None
    hangup_by: str = "agent"
    agi_status: Optional[str] = None
    agi_results: list[AgiResult] = field(default_factory=list)
    queue: Optional[str] = None
    priority: int = 0
    position: Optional[int] = None
    agent: Optional[str] = None  # interface of the member who answered
    agent_name: Optional[str] = None
    rung: list[str] = field(default_factory=list)  # interfaces rung, in order
    outcome: Optional[str] = None  # answered | abandoned | hangup | afterhours
    _events: dict[str, asyncio.Event] = field(default_factory=lambda: {s: asyncio.Event() for s in CALL_STATES})
    _hangup: asyncio.Event = field(default_factory=asyncio.Event)
    _ringing: dict[str, tuple[Channel, Member]] = field(default_factory=dict)
    _ring_task: Optional[asyncio.Task[None]] = None
    _agent_leg: Optional[tuple[Channel, Member]] = None
    _holdtime: int = 0
    _hangup_side: str = "caller"
    _task: Optional[asyncio.Task[None]] = None

    @property
    def uniqueid(self) -> str:
        return self.channel.uniqueid

    @property
    def variables(self) -> dict[str, str]:
        return self.channel.variables

    def reached(self, state: str) -> bool:
        return self._events[state].is_set()

    async def wait(self, state: str = "finished", timeout: Optional[float] = None) -> "CallHandle":
        """Wait (real seconds) until the call reaches ``state`` (one of :data:`CALL_STATES`)."""
        await asyncio.wait_for(self._events[state].wait(), timeout)
        return self

    def hangup(self, side: str = "caller") -> None:
        """The caller (or, during the conversation, the agent: ``side="agent"``) hangs up now."""
        self._hangup_side = side
        self._hangup.set()

    def _mark(self, state: str) -> None:
        self._events[state].set()


class SimPbx:
    """The simulated PBX. ``await start()``, place calls (or run traffic), ``await stop()``."""

    def __init__(self, config: SimConfig, *, clock: Optional[SimClock] = None,
                 rng: Optional[random.Random] = None) -> None:
        self.config = config
        self.clock = clock or SimClock(config.speed, config.start_epoch)
        self.rng = rng or random.Random(config.seed)
        self.ids = IdAllocator(self.clock.now)
        self.queues = QueueSystem(queue_configs(config), self.clock.now())
        self.agents: dict[str, AgentConfig] = {a.interface: a for a in config.agents}
        self.channels: dict[str, Channel] = {}
        self.globals: dict[str, str] = {"DEFAULT_QUEUE": config.default_queue}
        self.calls: dict[str, CallHandle] = {}  # by caller uniqueid, while alive
        self.processed_calls = 0
        self.listeners: list[Callable[[Headers], None]] = []
        self.originated: dict[str, asyncio.Event] = {}  # click-to-dial channels -> their hang-up
        self._status: dict[str, int] = {}
        self._kick = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        from cti.sim.actions import action_table  # late import: actions need the SimPbx type

        self.ami = AmiServer(config.users, action_table(self), host=config.ami_host, port=config.ami_port,
                             auth_fail_delay=config.auth_fail_delay, clock=self.clock.now)

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def ami_port(self) -> int:
        return self.ami.port

    async def start(self) -> None:
        await self.ami.start()
        self._spawn(self._dispatch_loop(), "dispatch")
        if self.config.calls_per_day > 0:
            from cti.sim.traffic import CallerPool, run_traffic

            pool = CallerPool(self.config.known_callers, random.Random(self.rng.random()), self.config.unknown_share)
            self._spawn(run_traffic(self, self.config.calls_per_day, pool, rng=random.Random(self.rng.random())),
                        "traffic")
        self._started = True
        log.info("sim.started", ami_port=self.ami.port, agi=f"{self.config.agi_host}:{self.config.agi_port}",
                 speed=self.clock.speed)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.ami.stop()
        self._started = False
        log.info("sim.stopped", processed_calls=self.processed_calls)

    async def __aenter__(self) -> "SimPbx":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sim.task_failed", task=task.get_name(), error=repr(task.exception()))

    # ---- events ---------------------------------------------------------------------------

    def emit(self, headers: Headers) -> None:
        self.ami.broadcast(headers)
        for listener in self.listeners:
            listener(headers)

    def kick(self) -> None:
        """Something changed that may let a waiting caller ring someone."""
        self._kick.set()

    def device_changed(self, interface: str) -> None:
        """Emit ``QueueMemberStatus`` in every queue of ``interface`` if its device state changed."""
        status = self.queues.member_status(interface)
        if self._status.get(interface, 1) == status:
            return
        self._status[interface] = status
        in_call = self.queues.device(interface).in_call
        for q, member in self.queues.queues_of(interface):
            self.emit(ev.member_event("QueueMemberStatus", q, member, status, in_call, q.config.wrapuptime))

    def _newexten(self, ch: Channel, priority: int, app: str, data: str) -> None:
        ch.priority = priority
        ch.application, ch.app_data = app, data
        self.emit(ev.channel_event("Newexten", ch, Extension=ch.exten, Application=app,
                                   AppData=data.encode("utf-8", "surrogateescape")))

    def _varset(self, ch: Channel, name: str, value: str) -> None:
        ch.variables[name] = value
        self.emit(ev.channel_event("VarSet", ch, Variable=name, Value=value.encode("utf-8", "surrogateescape")))

    def _hangup_channel(self, ch: Channel, cause: int = 16, text: str = "Normal Clearing") -> None:
        self.emit(ev.channel_event("Hangup", ch, Cause=cause, **{"Cause-txt": text}))
        self.channels.pop(ch.name, None)

    # ---- calls ----------------------------------------------------------------------------

    def place_call(self, callerid: str, name: str = "", dnid: Optional[str] = None, *,
                   patience: Optional[float] = None, ivr_digit: Optional[str] = None,
                   talk_time: Optional[float] = None, hangup_by: str = "agent") -> CallHandle:
        """Start one inbound call to the 800 line; returns its handle at once.

        ``patience``: simulated seconds the caller waits in the queue before abandoning (default:
        exponential around ``config.patience_mean``); ``talk_time``: seconds of conversation
        (default: log-normal around the agent's AHT); ``hangup_by``: who ends the conversation
        (``agent`` or ``caller``, the ``AgentComplete.Reason``)."""
        dnid = dnid or self.config.dnid
        uid = self.ids.uniqueid()
        suffix = self.ids.channel_suffix()
        trunk = self.config.trunk
        chan_name = f"{trunk}-{suffix};2" if trunk.startswith("Local/") else f"{trunk}-{suffix}"
        ch = Channel(chan_name, uid, uid, self.config.context, dnid, 1, STATE_RING,
                     caller_num=callerid or "<unknown>", caller_name=name or "<unknown>",
                     connected_num=callerid or "<unknown>", connected_name=name or "<unknown>",
                     created=self.clock.now(), dnid=dnid)
        if patience is None:
            patience = self.rng.expovariate(1.0 / self.config.patience_mean)
        handle = CallHandle(callerid, name, dnid, ch, patience, ivr_digit, talk_time, hangup_by)
        self.calls[uid] = handle
        self.channels[ch.name] = ch
        handle._task = self._spawn(self._inbound(handle), f"call-{uid}")
        return handle

    async def _pause(self, handle: CallHandle, seconds: float) -> bool:
        """Sleep ``seconds`` of simulated time; True if the caller hung up meanwhile."""
        if handle._hangup.is_set():
            return True
        try:
            await asyncio.wait_for(handle._hangup.wait(), self.clock.real(seconds))
            return True
        except asyncio.TimeoutError:
            return False

    async def _inbound(self, handle: CallHandle) -> None:
        ch = handle.channel
        bound = log.bind(uniqueid=ch.uniqueid)
        bound.info("sim.call.start", dnid=handle.dnid)
        handle._mark("started")
        try:
            await self._run_dialplan(handle)
        finally:
            if handle.outcome is None:
                handle.outcome = "hangup"
            self.calls.pop(ch.uniqueid, None)
            self.processed_calls += 1
            handle._mark("finished")
            bound.info("sim.call.end", outcome=handle.outcome, queue=handle.queue, agent=handle.agent)

    def _caller_gone(self, handle: CallHandle, app: str, data: str) -> None:
        ch = handle.channel
        now = self.clock.now()
        self.emit(ev.channel_event("SoftHangupRequest", ch, Cause=16))
        self._hangup_channel(ch)
        self.emit(ev.cdr_event(ch, source=handle.callerid, destination=handle.dnid,
                               destination_context=self.config.context, destination_channel="",
                               last_app=app, last_data=data, end=now))

    async def _run_dialplan(self, handle: CallHandle) -> None:
        ch, cfg = handle.channel, self.config
        self.emit(ev.channel_event("Newchannel", ch))
        self._newexten(ch, 1, "NoOp", f"800 line call from {ch.callerid_all()}")
        self._newexten(ch, 2, "Answer", "")
        ch.state, ch.answered = STATE_UP, self.clock.now()
        self.emit(ev.channel_event("Newstate", ch))
        handle._mark("up")
        if await self._pause(handle, cfg.answer_seconds):
            return self._caller_gone(handle, "Answer", "")
        result = await self._agi(handle, 3, "incoming", ())
        if result.status == "HANGUP" or handle._hangup.is_set():
            return self._caller_gone(handle, "AGI", f"agi://{cfg.agi_host}:{cfg.agi_port}/incoming")
        handle._mark("agi_done")
        self._fallback(handle, 4)
        greeting = ch.variables.get("CTI_GREETING", "")
        self._newexten(ch, 5, "Playback", greeting)
        self._varset(ch, "PLAYBACKSTATUS", "SUCCESS" if greeting else "FAILED")
        if await self._pause(handle, cfg.greeting_seconds if greeting else 0):
            return self._caller_gone(handle, "Playback", greeting)
        action = ch.variables.get("CTI_ACTION", "queue")
        priority = 6
        if action == "afterhours":
            self._newexten(ch, 6, "Playback", "cti/afterhours")
            await self._pause(handle, cfg.afterhours_seconds)
            self._newexten(ch, 7, "Hangup", "")
            handle.outcome = "afterhours"
            return self._caller_gone(handle, "Hangup", "")
        if action == "ivr":
            self._newexten(ch, 6, "Read", "IVR_DIGIT,cti/ivr-menu,1,,1,5")
            if await self._pause(handle, cfg.ivr_seconds):
                return self._caller_gone(handle, "Read", "IVR_DIGIT")
            digit = handle.ivr_digit if handle.ivr_digit is not None else self.rng.choice("123")
            self._varset(ch, "IVR_DIGIT", digit)
            ch.variables.pop("CTI_QUEUE", None)
            result = await self._agi(handle, 7, "ivr", (digit,))
            if result.status == "HANGUP" or handle._hangup.is_set():
                return self._caller_gone(handle, "AGI", f"agi://{cfg.agi_host}:{cfg.agi_port}/ivr,{digit}")
            self._fallback(handle, 8)
            priority = 9
        queue = ch.variables["CTI_QUEUE"]
        prio_text = ch.variables.get("CTI_PRIORITY", "")
        self._newexten(ch, priority, "ExecIf", f"{int(prio_text != '')}?Set(QUEUE_PRIO={prio_text})")
        if prio_text != "":
            self._varset(ch, "QUEUE_PRIO", prio_text)
        try:
            handle.priority = int(prio_text or 0)
        except ValueError:
            handle.priority = 0
        self._newexten(ch, priority + 1, "Queue", queue)
        if queue not in self.queues.queues:
            self._varset(ch, "QUEUESTATUS", "UNKNOWN")
            handle.outcome = "hangup"
            return self._caller_gone(handle, "Queue", queue)
        await self._wait_in_queue(handle, queue)

    def _fallback(self, handle: CallHandle, priority: int) -> None:
        ch = handle.channel
        empty = not ch.variables.get("CTI_QUEUE")
        default = self.globals.get("DEFAULT_QUEUE", self.config.default_queue)
        self._newexten(ch, priority, "ExecIf", f"{int(empty)}?Set(CTI_QUEUE={default})")
        if empty:
            self._varset(ch, "CTI_QUEUE", default)

    async def _agi(self, handle: CallHandle, priority: int, script: str, args: tuple[str, ...]) -> AgiResult:
        ch, cfg = handle.channel, self.config
        request = f"agi://{cfg.agi_host}:{cfg.agi_port}/{script}"
        self._newexten(ch, priority, "AGI", request + "".join("," + a for a in args))
        env = environment(script=script, host=cfg.agi_host, port=cfg.agi_port, channel=ch.name,
                          uniqueid=ch.uniqueid, callerid=handle.callerid, calleridname=handle.name,
                          dnid="unknown" if ch.tech == "Local" else handle.dnid, context=ch.context,
                          extension=ch.exten, priority=priority, language=ch.language, args=args,
                          threadid=self.rng.randrange(10**14, 10**15))
        readable = {**ch.variables, "CALLERID(num)": handle.callerid, "CALLERID(name)": handle.name,
                    "CALLERID(all)": ch.callerid_all()}

        async def caller_hangs_up() -> None:
            # Asterisk has no AGI read timeout: a silent server keeps the caller in silence
            # until the caller gives up (after their patience).
            try:
                await asyncio.wait_for(handle._hangup.wait(), self.clock.real(handle.patience))
            except asyncio.TimeoutError:
                handle.hangup()

        result = await run_agi(cfg.agi_host, cfg.agi_port, env, readable,
                               connect_timeout=max(self.clock.real(cfg.agi_connect_timeout), cfg.agi_connect_floor),
                               hangup=caller_hangs_up(), rng=self.rng)
        for command in result.commands:
            self.emit(ev.channel_event("AGIExecStart", ch, CommandId=command.command_id, Command=command.command))
            if command.variable is not None:
                name, value = command.variable
                self.emit(ev.channel_event("VarSet", ch, Variable=name, Value=value.encode("utf-8", "surrogateescape")))
            self.emit(ev.channel_event("AGIExecEnd", ch, CommandId=command.command_id, Command=command.command,
                                       ResultCode=command.result_code, Result=command.result))
        ch.variables.update(result.variables)
        self._varset(ch, "AGISTATUS", result.status)
        handle.agi_status = result.status
        handle.agi_results.append(result)
        log.info("sim.call.agi", uniqueid=ch.uniqueid, script=script, status=result.status,
                 queue=ch.variables.get("CTI_QUEUE"))
        return result

    # ---- the queue ------------------------------------------------------------------------

    async def _wait_in_queue(self, handle: CallHandle, queue: str) -> None:
        ch = handle.channel
        now = self.clock.now()
        position, count = self.queues.join(queue, ch.uniqueid, handle.priority, now)
        handle.queue, handle.position = queue, position
        joined = now
        self.emit(ev.queue_caller_event("QueueCallerJoin", ch, queue, Position=position, Count=count))
        self.emit(ev.channel_event("MusicOnHoldStart", ch, Class="default"))
        handle._mark("queued")
        self.kick()
        connected = asyncio.ensure_future(handle._events["answered"].wait())
        hung = asyncio.ensure_future(handle._hangup.wait())
        try:
            done, _ = await asyncio.wait({connected, hung}, timeout=self.clock.real(handle.patience),
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
            hung.cancel()
        if not handle.reached("answered"):
            return self._abandon(handle, queue, joined)
        await self._talk(handle, queue)

    def _abandon(self, handle: CallHandle, queue: str, joined: float) -> None:
        ch = handle.channel
        now = self.clock.now()
        left = self.queues.abandon(queue, ch.uniqueid, now)
        if handle._ring_task is not None:
            handle._ring_task.cancel()
        for interface in left.cancelled:
            leg = handle._ringing.get(interface)
            if leg is not None:
                agent_ch, _ = leg
                self.emit(ev.dial_event("DialEnd", ch, agent_ch, DialStatus="CANCEL"))
                self._hangup_channel(agent_ch, 0, "Unknown")
        handle._ringing.clear()
        for interface in left.cancelled:
            self.device_changed(interface)
        self.emit(ev.channel_event("MusicOnHoldStop", ch))
        self.emit(ev.queue_caller_event("QueueCallerAbandon", ch, queue, Position=left.position,
                                        OriginalPosition=left.original_position, HoldTime=left.holdtime))
        self.emit(ev.queue_caller_event("QueueCallerLeave", ch, queue, Position=left.position, Count=left.count))
        handle.outcome = "abandoned"
        log.info("sim.call.abandoned", uniqueid=ch.uniqueid, queue=queue, holdtime=left.holdtime)
        self._caller_gone(handle, "Queue", queue)
        self.kick()

    async def _dispatch_loop(self) -> None:
        while True:
            self._kick.clear()
            now = self.clock.now()
            for ring in self.queues.ring_decisions(now):
                try:
                    self._start_ring(ring)
                except Exception:  # one broken call must not stop the queues
                    log.exception("sim.ring_failed", uniqueid=ring.uniqueid, queue=ring.queue)
            wake = self.queues.next_wakeup(now)
            timeout = None if wake is None else max(0.001, self.clock.real(wake - now))
            try:
                await asyncio.wait_for(self._kick.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def agent_config(self, interface: str) -> AgentConfig:
        agent = self.agents.get(interface)
        if agent is None:
            agent = AgentConfig(interface, interface, answer_delay=self.config.dynamic_answer_delay,
                                aht=self.config.dynamic_aht)
        return agent

    def _noanswer(self, interface: str) -> bool:
        ext = interface.split("/", 1)[-1].split("@", 1)[0]
        return self.agent_config(interface).noanswer or self.globals.get(f"AGENT_{ext}_NOANSWER") == "1"

    def _start_ring(self, ring: Ring) -> None:
        handle = self.calls[ring.uniqueid]
        caller = handle.channel
        q = self.queues.queue(ring.queue)
        legs: dict[str, tuple[Channel, Member]] = {}
        for interface in ring.interfaces:
            member = q.member(interface)
            assert member is not None
            agent_ch = Channel(channel_name(interface, self.ids.channel_suffix()), self.ids.uniqueid(),
                               caller.linkedid, "agents", caller.exten, 1, STATE_DOWN,
                               caller_num=caller.caller_num, caller_name=caller.caller_name,
                               connected_num=caller.caller_num, connected_name=caller.caller_name,
                               created=self.clock.now())
            self.channels[agent_ch.name] = agent_ch
            legs[interface] = (agent_ch, member)
            handle.rung.append(interface)
            self.emit(ev.channel_event("Newchannel", agent_ch))
            self.emit(ev.agent_event("AgentCalled", caller, agent_ch, q.name, member))
            self.emit(ev.dial_event("DialBegin", caller, agent_ch, DialString=interface.split("/", 1)[-1]))
            agent_ch.state = STATE_RINGING
            self.emit(ev.channel_event("Newstate", agent_ch))
            self.emit(ev.dial_event("DialState", caller, agent_ch, DialStatus="RINGING"))
            self.device_changed(interface)
        handle._ringing = legs
        handle._mark("ringing")
        delays = {i: (math.inf if self._noanswer(i) else max(0.0, self.rng.gauss(self.agent_config(i).answer_delay, 0.5)))
                  for i in ring.interfaces}
        handle._ring_task = self._spawn(self._ring_wait(handle, q.name, delays), f"ring-{caller.uniqueid}")

    async def _ring_wait(self, handle: CallHandle, queue: str, delays: dict[str, float]) -> None:
        timeout = self.queues.queue(queue).config.timeout
        first = min(delays, key=lambda i: delays[i])
        await self.clock.sleep(min(delays[first], timeout))
        if handle.outcome is not None or not handle._ringing:
            return
        if delays[first] < timeout:
            self._connect(handle, queue, first)
        else:
            self._ring_no_answer(handle, queue, timeout)

    def _ring_no_answer(self, handle: CallHandle, queue: str, timeout: float) -> None:
        caller = handle.channel
        stopped = self.queues.ring_timeout(queue, caller.uniqueid, self.clock.now())
        for interface in stopped:
            agent_ch, member = handle._ringing[interface]
            self.emit(ev.agent_event("AgentRingNoAnswer", caller, agent_ch, queue, member, RingTime=int(timeout * 1000)))
            self.emit(ev.dial_event("DialEnd", caller, agent_ch, DialStatus="NOANSWER"))
            self._hangup_channel(agent_ch, 0, "Unknown")
        handle._ringing = {}
        handle._ring_task = None
        for interface in stopped:
            self.device_changed(interface)
        self.kick()

    def _connect(self, handle: CallHandle, queue: str, interface: str) -> None:
        caller = handle.channel
        now = self.clock.now()
        conn = self.queues.answer(queue, caller.uniqueid, interface, now)
        agent_ch, member = handle._ringing[interface]
        for other in conn.cancelled:
            other_ch, _ = handle._ringing[other]
            self.emit(ev.dial_event("DialEnd", caller, other_ch, DialStatus="CANCEL"))
            self._hangup_channel(other_ch, 26, "Answered elsewhere")
        agent_ch.state, agent_ch.answered = STATE_UP, now
        self.emit(ev.channel_event("Newstate", agent_ch))
        self.emit(ev.dial_event("DialEnd", caller, agent_ch, DialStatus="ANSWER"))
        for other in conn.cancelled:
            self.device_changed(other)
        self.emit(ev.channel_event("MusicOnHoldStop", caller))
        self.emit(ev.queue_caller_event("QueueCallerLeave", caller, queue, Position=conn.position, Count=conn.count))
        self.emit(ev.agent_event("AgentConnect", caller, agent_ch, queue, member,
                                 HoldTime=conn.holdtime, RingTime=conn.ringtime))
        bridge = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        caller.bridge_id = agent_ch.bridge_id = bridge
        self.emit(ev.bridge_event("BridgeCreate", bridge, 0))
        self.emit(ev.bridge_event("BridgeEnter", bridge, 1, agent_ch))
        self.emit(ev.bridge_event("BridgeEnter", bridge, 2, caller))
        self.device_changed(interface)
        handle._ringing = {}
        handle._ring_task = None
        handle._agent_leg = (agent_ch, member)
        handle._holdtime = conn.holdtime
        handle.agent, handle.agent_name = interface, member.name
        handle.outcome = "answered"
        log.info("sim.call.connected", uniqueid=caller.uniqueid, queue=queue, agent=interface, holdtime=conn.holdtime)
        handle._mark("answered")
        self.kick()

    async def _talk(self, handle: CallHandle, queue: str) -> None:
        caller = handle.channel
        assert handle._agent_leg is not None
        agent_ch, member = handle._agent_leg
        talk = handle.talk_time
        if talk is None:
            aht = self.agent_config(member.interface).aht
            sigma = 0.5
            talk = self.rng.lognormvariate(math.log(aht) - sigma * sigma / 2, sigma)
        start = self.clock.now()
        caller_hung = await self._pause(handle, talk)
        now = self.clock.now()
        talked = int(now - start)
        if caller_hung:
            reason = handle._hangup_side
        else:
            reason = "caller" if handle.hangup_by == "caller" else "agent"
        self.queues.complete(queue, member.interface, now - start, now)
        bridge = caller.bridge_id
        self.emit(ev.channel_event("SoftHangupRequest", agent_ch if reason == "agent" else caller, Cause=16))
        self.emit(ev.agent_event("AgentComplete", caller, agent_ch, queue, member,
                                 HoldTime=handle._holdtime, TalkTime=talked, Reason=reason))
        self._hangup_channel(agent_ch)
        self.device_changed(member.interface)
        self.emit(ev.bridge_event("BridgeLeave", bridge, 1, agent_ch))
        self.emit(ev.bridge_event("BridgeLeave", bridge, 0, caller))
        self.emit(ev.bridge_event("BridgeDestroy", bridge, 0))
        self._hangup_channel(caller)
        self.emit(ev.cdr_event(caller, source=handle.callerid, destination=handle.dnid,
                               destination_context=self.config.context, destination_channel=agent_ch.name,
                               last_app="Queue", last_data=queue, end=now))
        log.info("sim.call.completed", uniqueid=caller.uniqueid, queue=queue, agent=member.interface,
                 talktime=talked, reason=reason)
        self.kick()
