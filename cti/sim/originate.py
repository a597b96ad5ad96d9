"""AMI ``Originate`` in the simulated PBX.

Two uses:

- ``Channel: Local/<800 number>@<inbound context>`` (how the captures were made): an inbound
  call with the Originate's ``CallerID`` enters the 800 line (``CALLER_SECONDS`` in ``Variable``
  is the caller's patience); ``OriginateResponse`` once its channel is up.
- any other interface (``PJSIP/1001``, click-to-dial from an agent's phone): the phone rings and
  answers after the agent's answer delay (or never, for a ``noanswer`` agent: ``OriginateResponse``
  with ``Response: Failure``/``Reason: 3`` after ``Timeout``), then the dialplan at
  ``Context``/``Exten`` dials the customer on the trunk, who answers and talks.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import TYPE_CHECKING, Optional

import structlog

from cti.sim import ami_format as fmt
from cti.sim import call_events as ev
from cti.sim.ami_server import Action, AmiSession, error, success
from cti.sim.channels import STATE_DOWN, STATE_RINGING, STATE_UP, Channel, channel_name

if TYPE_CHECKING:
    from cti.sim.pbx import SimPbx

log = structlog.get_logger(__name__)

KNOWN_TECHS = ("PJSIP", "SIP", "IAX2", "DAHDI", "Local")
INBOUND_CONTEXTS = ("from-pstn", "from-pstn-test")


def _variables(action: Action) -> dict[str, str]:
    result = {}
    for item in action.get_all("Variable"):
        for pair in item.split(","):
            name, sep, value = pair.partition("=")
            if sep:
                result[name.strip()] = value
    return result


def _originate_response(pbx: "SimPbx", action: Action, ok: bool, channel: str, context: str, exten: str,
                        reason: int, uniqueid: str, num: str, name: str) -> None:
    pbx.emit(fmt.build_event("OriginateResponse", {
        "Response": "Success" if ok else "Failure", "Channel": channel, "Context": context, "Exten": exten,
        "Reason": reason, "Uniqueid": uniqueid, "CallerIDNum": num or "<unknown>",
        "CallerIDName": name or "<unknown>"}, action_id=action.action_id))


async def start_originate(pbx: "SimPbx", session: AmiSession, action: Action) -> None:
    from cti.sim.actions import parse_callerid

    target = action.get("Channel")
    tech, _, resource = target.partition("/")
    is_async = action.flag("Async")
    num, name = parse_callerid(action.get("CallerID")) if action.get("CallerID") else ("", "")
    context, exten = action.get("Context"), action.get("Exten")
    valid = tech in KNOWN_TECHS and resource != ""
    inbound = False
    if valid and tech == "Local":
        local_exten, _, local_ctx = resource.removesuffix("/n").partition("@")
        inbound = local_ctx in (pbx.config.context, *INBOUND_CONTEXTS)
        valid = inbound or local_ctx in ("agents", "phones", "default")
    if not valid:
        log.info("sim.originate.failed", channel=target)
        if is_async:
            session.send(success(action, fmt.MSG_ORIGINATE_QUEUED))
            _originate_response(pbx, action, False, target, context, exten, 0, "<null>", num, name)
        else:
            session.send(error(action, fmt.MSG_ORIGINATE_FAILED))
        return
    variables = _variables(action)
    if inbound:
        patience = float(variables["CALLER_SECONDS"]) if "CALLER_SECONDS" in variables else None
        handle = pbx.place_call(num, name, local_exten, patience=patience)
        if is_async:
            session.send(success(action, fmt.MSG_ORIGINATE_QUEUED))
        await handle.wait("up")
        if not is_async:
            session.send(success(action, fmt.MSG_ORIGINATE_QUEUED))
        _originate_response(pbx, action, True, handle.channel.name, context, exten, 4, handle.uniqueid, num, name)
        return
    if is_async:
        session.send(success(action, fmt.MSG_ORIGINATE_QUEUED))
        pbx._spawn(_click_to_dial(pbx, action, target, num, name, variables, None), "originate")
    else:
        answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        pbx._spawn(_click_to_dial(pbx, action, target, num, name, variables, answered), "originate")
        if await answered:
            session.send(success(action, fmt.MSG_ORIGINATE_QUEUED))
        else:
            session.send(error(action, fmt.MSG_ORIGINATE_FAILED))


async def _click_to_dial(pbx: "SimPbx", action: Action, interface: str, num: str, name: str,
                         variables: dict[str, str], answered: Optional[asyncio.Future[bool]]) -> None:
    context, exten = action.get("Context") or "default", action.get("Exten") or "s"
    timeout = float(action.get("Timeout") or 30000) / 1000.0
    uid = pbx.ids.uniqueid()
    phone = Channel(channel_name(interface, pbx.ids.channel_suffix()), uid, uid, context, exten, 1, STATE_DOWN,
                    caller_num=num or "<unknown>", caller_name=name or "<unknown>",
                    created=pbx.clock.now(), variables=dict(variables))
    pbx.channels[phone.name] = phone
    device = pbx.queues.device(interface)
    hangup = asyncio.Event()
    pbx.originated[phone.name] = hangup
    bound = log.bind(uniqueid=uid)
    device.in_call = True
    pbx.device_changed(interface)
    try:
        pbx.emit(ev.channel_event("Newchannel", phone))
        phone.state = STATE_RINGING
        pbx.emit(ev.channel_event("Newstate", phone))
        delay = math.inf if pbx._noanswer(interface) else max(0.0, pbx.rng.gauss(pbx.agent_config(interface).answer_delay, 0.5))
        await pbx.clock.sleep(min(delay, timeout))
        if delay >= timeout:
            bound.info("sim.originate.noanswer", channel=phone.name)
            pbx._hangup_channel(phone, 19, "User alerting, no answer")
            _originate_response(pbx, action, False, interface, context, exten, 3, "<null>", num, name)
            if answered is not None:
                answered.set_result(False)
            return
        phone.state, phone.answered = STATE_UP, pbx.clock.now()
        pbx.emit(ev.channel_event("Newstate", phone))
        if answered is not None:
            answered.set_result(True)
        _originate_response(pbx, action, True, phone.name, context, exten, 4, uid, num, name)
        application = action.get("Application")
        if application:
            pbx._newexten(phone, 1, application, action.get("Data"))
            seconds = float(action.get("Data") or 1) if application.lower() == "wait" else 1.0
            await _wait(pbx, hangup, seconds)
            pbx._hangup_channel(phone)
            return
        await _dial_customer(pbx, phone, exten, hangup)
    finally:
        pbx.originated.pop(phone.name, None)
        pbx.channels.pop(phone.name, None)
        device.in_call = False
        device.last_call_end = pbx.clock.now()
        pbx.device_changed(interface)
        pbx.kick()


async def _wait(pbx: "SimPbx", hangup: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(hangup.wait(), pbx.clock.real(seconds))
        return True
    except asyncio.TimeoutError:
        return False


async def _dial_customer(pbx: "SimPbx", phone: Channel, number: str, hangup: asyncio.Event) -> None:
    trunk = pbx.config.trunk if not pbx.config.trunk.startswith("Local/") else "PJSIP/trunk"
    pbx._newexten(phone, 1, "Dial", f"{trunk}/{number},30")
    customer = Channel(f"{trunk}-{pbx.ids.channel_suffix()}", pbx.ids.uniqueid(), phone.linkedid, "from-pstn",
                       number, 1, STATE_DOWN, caller_num=phone.caller_num, caller_name=phone.caller_name,
                       connected_num=number, connected_name="<unknown>", created=pbx.clock.now())
    pbx.channels[customer.name] = customer
    pbx.originated[customer.name] = hangup
    try:
        pbx.emit(ev.channel_event("Newchannel", customer))
        pbx.emit(ev.dial_event("DialBegin", phone, customer, DialString=f"{trunk.split('/', 1)[1]}/{number}"))
        customer.state = STATE_RINGING
        pbx.emit(ev.channel_event("Newstate", customer))
        pbx.emit(ev.dial_event("DialState", phone, customer, DialStatus="RINGING"))
        if await _wait(pbx, hangup, pbx.config.originate_answer_delay):
            pbx.emit(ev.dial_event("DialEnd", phone, customer, DialStatus="CANCEL"))
            pbx._hangup_channel(customer, 0, "Unknown")
            pbx._hangup_channel(phone)
            return
        customer.state, customer.answered = STATE_UP, pbx.clock.now()
        pbx.emit(ev.channel_event("Newstate", customer))
        pbx.emit(ev.dial_event("DialEnd", phone, customer, DialStatus="ANSWER"))
        bridge = str(uuid.UUID(int=pbx.rng.getrandbits(128), version=4))
        phone.bridge_id = customer.bridge_id = bridge
        pbx.emit(ev.bridge_event("BridgeCreate", bridge, 0))
        pbx.emit(ev.bridge_event("BridgeEnter", bridge, 1, phone))
        pbx.emit(ev.bridge_event("BridgeEnter", bridge, 2, customer))
        aht = pbx.config.dynamic_aht
        talk = pbx.rng.lognormvariate(math.log(aht) - 0.125, 0.5)
        await _wait(pbx, hangup, talk)
        pbx._hangup_channel(customer)
        pbx.emit(ev.bridge_event("BridgeLeave", bridge, 1, customer))
        pbx.emit(ev.bridge_event("BridgeLeave", bridge, 0, phone))
        pbx.emit(ev.bridge_event("BridgeDestroy", bridge, 0))
        pbx._hangup_channel(phone)
        pbx.emit(ev.cdr_event(phone, source=phone.caller_num, destination=number, destination_context=phone.context,
                              destination_channel=customer.name, last_app="Dial", last_data=f"{trunk}/{number},30",
                              end=pbx.clock.now()))
    finally:
        pbx.originated.pop(customer.name, None)
        pbx.channels.pop(customer.name, None)
