"""AMI actions of the simulated PBX, answered with the captured texts and list formats."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional

import structlog

from cti.sim import ami_format as fmt
from cti.sim import call_events as ev
from cti.sim.ami_server import Action, ActionSpec, AmiSession, error, list_response, response, success
from cti.sim.queue import DEVICE_INUSE, DEVICE_NOT_INUSE, DEVICE_RINGING, QueueError

if TYPE_CHECKING:
    from cti.sim.pbx import SimPbx

log = structlog.get_logger(__name__)

KNOWN_MODULES = ("pbx_config.so", "app_queue.so", "res_agi.so", "chan_pjsip.so", "manager")


def _duration(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def parse_callerid(text: str) -> tuple[str, str]:
    """``"Wang Wei" <13800138000>`` -> (number, name)."""
    match = re.match(r'\s*"?(.*?)"?\s*<([^>]*)>\s*$', text)
    if match:
        return match.group(2), match.group(1)
    return text.strip(), ""


class PbxActions:
    def __init__(self, pbx: "SimPbx") -> None:
        self.pbx = pbx

    # ---- queues ---------------------------------------------------------------------------

    async def queue_status(self, session: AmiSession, action: Action) -> None:
        pbx, aid = self.pbx, action.action_id
        only_queue, only_member = action.get("Queue"), action.get("Member")
        now = pbx.clock.now()
        items: list[ev.Headers] = []
        for q in pbx.queues.queues.values():
            if only_queue and q.name != only_queue:
                continue
            items.append(fmt.build_event("QueueParams", {
                "Queue": q.name, "Max": 0, "Strategy": q.config.strategy.value, "Calls": len(q.callers),
                "Holdtime": q.holdtime, "TalkTime": q.talktime, "Completed": q.completed,
                "Abandoned": q.abandoned, "ServiceLevel": 0, "ServicelevelPerf": "0.0",
                "ServicelevelPerf2": "0.0", "Weight": q.config.weight}, action_id=aid))
            for member in q.members:
                if only_member and member.interface != only_member:
                    continue
                device = pbx.queues.device(member.interface)
                items.append(ev.queue_member_item(q, member, pbx.queues.member_status(member.interface),
                                                  device.in_call, aid))
            for position, caller in enumerate(q.callers, 1):
                handle = pbx.calls.get(caller.uniqueid)
                if handle is None:
                    continue
                ch = handle.channel
                items.append(fmt.build_event("QueueEntry", {
                    "Queue": q.name, "Position": position, "Channel": ch.name, "Uniqueid": ch.uniqueid,
                    "CallerIDNum": fmt.c_escape(ch.caller_num), "CallerIDName": fmt.c_escape(ch.caller_name),
                    "ConnectedLineNum": fmt.c_escape(ch.connected_num),
                    "ConnectedLineName": fmt.c_escape(ch.connected_name),
                    "Wait": int(now - caller.joined), "Priority": caller.priority}, action_id=aid))
        list_response(session, action, fmt.MSG_QUEUE_STATUS_FOLLOWS, items, "QueueStatusComplete")

    async def queue_summary(self, session: AmiSession, action: Action) -> None:
        pbx, aid = self.pbx, action.action_id
        now = pbx.clock.now()
        items = []
        for q in pbx.queues.queues.values():
            if action.get("Queue") and q.name != action.get("Queue"):
                continue
            available = sum(1 for m in q.members if pbx.queues.available(q, m, now))
            longest = max((int(now - c.joined) for c in q.callers), default=0)
            items.append(fmt.build_event("QueueSummary", {
                "Queue": q.name, "LoggedIn": len(q.members), "Available": available, "Callers": len(q.callers),
                "HoldTime": q.holdtime, "TalkTime": q.talktime, "LongestHoldTime": longest}, action_id=aid))
        list_response(session, action, fmt.MSG_QUEUE_SUMMARY_FOLLOWS, items, "QueueSummaryComplete")

    def _member_events(self, name: str, targets: list) -> None:
        for q, member in targets:
            device = self.pbx.queues.device(member.interface)
            self.pbx.emit(ev.member_event(name, q, member, self.pbx.queues.member_status(member.interface),
                                          device.in_call, q.config.wrapuptime))

    async def queue_add(self, session: AmiSession, action: Action) -> None:
        pbx = self.pbx
        queue, interface = action.get("Queue"), action.get("Interface")
        if not queue or not interface:
            session.send(error(action, "'Queue' and 'Interface' not specified."))
            return
        try:
            penalty = int(action.get("Penalty") or 0)
            member = pbx.queues.add_member(queue, interface, action.get("MemberName"), penalty=penalty,
                                           paused=action.flag("Paused"), reason=action.get("Reason"),
                                           now=pbx.clock.now())
        except QueueError as exc:
            session.send(error(action, str(exc)))
            return
        except ValueError:
            session.send(error(action, "Unable to add interface to queue: No such queue"))
            return
        session.send(success(action, fmt.MSG_ADDED))
        self._member_events("QueueMemberAdded", [(pbx.queues.queue(queue), member)])
        pbx.kick()

    async def queue_remove(self, session: AmiSession, action: Action) -> None:
        pbx = self.pbx
        queue, interface = action.get("Queue"), action.get("Interface")
        try:
            member = pbx.queues.remove_member(queue, interface)
        except QueueError as exc:
            session.send(error(action, str(exc)))
            return
        session.send(success(action, fmt.MSG_REMOVED))
        self._member_events("QueueMemberRemoved", [(pbx.queues.queue(queue), member)])

    async def queue_pause(self, session: AmiSession, action: Action) -> None:
        pbx = self.pbx
        interface = action.get("Interface")
        if not interface:
            session.send(error(action, "Need 'Interface' and 'Paused' actions."))
            return
        paused = action.flag("Paused")
        try:
            targets = pbx.queues.pause(interface, paused, reason=action.get("Reason"),
                                       queue=action.get("Queue") or None, now=pbx.clock.now())
        except QueueError as exc:
            session.send(error(action, str(exc)))
            return
        session.send(success(action, fmt.MSG_PAUSED if paused else fmt.MSG_UNPAUSED))
        self._member_events("QueueMemberPause", targets)
        pbx.kick()

    async def queue_penalty(self, session: AmiSession, action: Action) -> None:
        pbx = self.pbx
        try:
            targets = pbx.queues.set_penalty(action.get("Interface"), int(action.get("Penalty")),
                                             queue=action.get("Queue") or None)
        except (QueueError, ValueError):
            session.send(error(action, fmt.MSG_PENALTY_FAILED))
            return
        session.send(success(action, fmt.MSG_PENALTY_SET))
        self._member_events("QueueMemberPenalty", targets)
        pbx.kick()

    # ---- channels -------------------------------------------------------------------------

    async def core_show_channels(self, session: AmiSession, action: Action) -> None:
        pbx, aid = self.pbx, action.action_id
        now = pbx.clock.now()
        items = []
        for ch in sorted(pbx.channels.values(), key=lambda c: -c.created):
            items.append(fmt.build_event("CoreShowChannel", {
                **ch.snapshot(), "Application": ch.application, "ApplicationData": ch.app_data,
                "Duration": _duration(now - ch.created), "BridgeId": ch.bridge_id}, action_id=aid))
        list_response(session, action, fmt.MSG_CHANNELS_FOLLOW, items, "CoreShowChannelsComplete")

    async def status(self, session: AmiSession, action: Action) -> None:
        pbx, aid = self.pbx, action.action_id
        only = action.get("Channel")
        if only and only not in pbx.channels:
            session.send(error(action, fmt.MSG_NO_SUCH_CHANNEL))
            return
        now = pbx.clock.now()
        items = []
        for ch in sorted(pbx.channels.values(), key=lambda c: -c.created):
            if only and ch.name != only:
                continue
            items.append(fmt.build_event("Status", {
                **ch.snapshot(), "Type": ch.tech, "DNID": ch.dnid, "EffectiveConnectedLineNum": ch.connected_num,
                "EffectiveConnectedLineName": ch.connected_name, "TimeToHangup": 0, "BridgeID": ch.bridge_id,
                "Application": ch.application, "Data": ch.app_data, "Nativeformats": "(ulaw)",
                "Readformat": "ulaw", "Readtrans": "", "Writeformat": "ulaw", "Writetrans": "", "Callgroup": 0,
                "Pickupgroup": 0, "Seconds": int(now - ch.created)}, action_id=aid))
        list_response(session, action, fmt.MSG_STATUS_FOLLOWS, items, "StatusComplete", Items=len(items))

    async def core_status(self, session: AmiSession, action: Action) -> None:
        from datetime import datetime, timezone

        boot = datetime.fromtimestamp(self.pbx.ami.boot_time, timezone.utc)
        reload_ = datetime.fromtimestamp(self.pbx.ami.reload_time, timezone.utc)
        session.send(response("Success", action,
                              ("CoreStartupDate", boot.strftime("%Y-%m-%d")),
                              ("CoreStartupTime", boot.strftime("%H:%M:%S")),
                              ("CoreReloadDate", reload_.strftime("%Y-%m-%d")),
                              ("CoreReloadTime", reload_.strftime("%H:%M:%S")),
                              ("CoreCurrentCalls", len(self.pbx.calls)),
                              ("CoreProcessedCalls", self.pbx.processed_calls)))

    async def core_settings(self, session: AmiSession, action: Action) -> None:
        """As Asterisk 22.10.1 answers it (checked against the real one; cti reads AsteriskVersion)."""
        session.send(response("Success", action,
                              ("AMIversion", fmt.AMI_VERSION), ("AsteriskVersion", fmt.ASTERISK_VERSION), ("SystemName", ""),
                              ("CoreMaxCalls", 0), ("CoreMaxLoadAvg", "0.000000"), ("CoreRunUser", ""),
                              ("CoreRunGroup", ""), ("CoreMaxFilehandles", 0), ("CoreRealTimeEnabled", "No"),
                              ("CoreCDRenabled", "Yes"), ("CoreHTTPenabled", "No"), ("SoundsSearchCustomDir", "No")))

    def _lookup(self, channel: str, variable: str) -> Optional[str]:
        ch = self.pbx.channels[channel]
        functions = {"CALLERID(num)": ch.caller_num, "CALLERID(name)": ch.caller_name,
                     "CALLERID(all)": ch.callerid_all()}
        return functions.get(variable, ch.variables.get(variable))

    async def getvar(self, session: AmiSession, action: Action) -> None:
        channel, variable = action.get("Channel"), action.get("Variable")
        if channel:
            if channel not in self.pbx.channels:
                session.send(error(action, fmt.MSG_NO_SUCH_CHANNEL))
                return
            value = self._lookup(channel, variable)
        else:
            value = self.pbx.globals.get(variable)
        session.send(response("Success", action, ("Variable", variable), ("Value", value or "")))

    async def setvar(self, session: AmiSession, action: Action) -> None:
        channel, variable, value = action.get("Channel"), action.get("Variable"), action.get("Value")
        if channel:
            ch = self.pbx.channels.get(channel)
            if ch is None:
                session.send(error(action, fmt.MSG_NO_SUCH_CHANNEL))
                return
            session.send(success(action, fmt.MSG_VARIABLE_SET))
            self.pbx._varset(ch, variable, value)
        else:
            self.pbx.globals[variable] = value
            session.send(success(action, fmt.MSG_VARIABLE_SET))
            self.pbx.kick()

    async def hangup(self, session: AmiSession, action: Action) -> None:
        name = action.get("Channel")
        for handle in list(self.pbx.calls.values()):
            if handle.channel.name == name:
                session.send(success(action, fmt.MSG_CHANNEL_HUNGUP))
                handle.hangup("caller")
                return
            if handle._agent_leg is not None and handle._agent_leg[0].name == name:
                session.send(success(action, fmt.MSG_CHANNEL_HUNGUP))
                handle.hangup("agent")
                return
        if name in self.pbx.originated:
            session.send(success(action, fmt.MSG_CHANNEL_HUNGUP))
            self.pbx.originated[name].set()
            return
        session.send(error(action, fmt.MSG_NO_SUCH_CHANNEL))

    async def originate(self, session: AmiSession, action: Action) -> None:
        from cti.sim.originate import start_originate

        await start_originate(self.pbx, session, action)

    # ---- system ---------------------------------------------------------------------------

    def _reload_globals(self) -> None:
        for name, value in self.pbx.globals.items():
            self.pbx.emit(fmt.build_event("VarSet", {"Channel": "none", "Uniqueid": "none",
                                                     "Variable": name, "Value": value}))

    async def command(self, session: AmiSession, action: Action) -> None:
        cmd = " ".join(action.get("Command").split())
        if cmd == "core restart now":
            log.info("sim.restart")
            self.pbx.ami.boot_time = self.pbx.ami.reload_time = self.pbx.clock.now()
            self.pbx.ami.drop_all()
            return
        if cmd == "dialplan reload":
            session.send(response("Success", action, ("Message", fmt.MSG_COMMAND_OUTPUT),
                                  ("Output", "Dialplan reloaded.")))
            self._reload_globals()
            return
        if cmd in ("queue reload all", "queue reload members", "queue reload parameters"):
            session.send(response("Success", action, ("Message", fmt.MSG_COMMAND_OUTPUT), ("Output", "")))
            return
        if cmd == "core show version":
            session.send(response("Success", action, ("Message", fmt.MSG_COMMAND_OUTPUT),
                                  ("Output", f"Asterisk {fmt.ASTERISK_VERSION} (cti sim)")))
            return
        match = re.fullmatch(r"queue show(?: (\S+))?", cmd)
        if match:
            lines = self._queue_show(match.group(1))
            if lines is None:
                session.send(response("Error", action, ("Message", fmt.MSG_COMMAND_OUTPUT),
                                      ("Output", f"No such queue: {match.group(1)}.")))
                return
            session.send(response("Success", action, ("Message", fmt.MSG_COMMAND_OUTPUT),
                                  *[("Output", line) for line in lines]))
            return
        session.send(response("Error", action, ("Message", fmt.MSG_COMMAND_OUTPUT),
                              ("Output", fmt.unknown_cli_output(cmd))))

    def _queue_show(self, name: Optional[str]) -> Optional[list[str]]:
        pbx = self.pbx
        now = pbx.clock.now()
        queues = [q for q in pbx.queues.queues.values() if name is None or q.name == name]
        if not queues:
            return None
        lines: list[str] = []
        for q in queues:
            lines.append(
                f"{q.name} has {len(q.callers)} calls (max unlimited) in '{q.config.strategy.value}' strategy "
                f"({q.holdtime}s holdtime, {q.talktime}s talktime), W:{q.config.weight}, C:{q.completed}, "
                f"A:{q.abandoned}, SL:0.0%, SL2:0.0% within 0s")
            lines.append("   Members: " if q.members else "   No Members")
            for m in q.members:
                status = {DEVICE_NOT_INUSE: "Not in use", DEVICE_INUSE: "In use", DEVICE_RINGING: "Ringing"}[
                    pbx.queues.member_status(m.interface)]
                text = f"      {m.name} ({m.interface})"
                if m.dynamic:
                    text += " (dynamic)"
                text += " (ringinuse disabled)"
                if m.paused:
                    text += f" (paused{':' + m.paused_reason if m.paused_reason else ''} was {int(now - m.last_pause)} secs ago)"
                text += f" ({status})"
                if m.calls_taken:
                    text += f" has taken {m.calls_taken} calls (last was {int(now - m.last_call)} secs ago)"
                else:
                    text += " has taken no calls yet"
                text += f" (login was {int(now - m.login_time)} secs ago)"
                lines.append(text)
            if q.callers:
                lines.append("   Callers: ")
                for position, c in enumerate(q.callers, 1):
                    handle = pbx.calls.get(c.uniqueid)
                    chan = handle.channel.name if handle else c.uniqueid
                    wait = int(now - c.joined)
                    lines.append(f"      {position}. {chan} (wait: {wait // 60}:{wait % 60:02d}, prio: {c.priority})")
            else:
                lines.append("   No Callers")
            lines.append("")
        lines.append("")
        return lines

    async def reload(self, session: AmiSession, action: Action) -> None:
        module = action.get("Module")
        if module and module not in KNOWN_MODULES:
            session.send(error(action, "No such module"))
            self.pbx.emit(fmt.build_event("Reload", {"Module": module, "Status": 2}))
            return
        session.send(success(action, "Module Reloaded"))
        if module in ("", "pbx_config.so"):
            self._reload_globals()
        self.pbx.ami.reload_time = self.pbx.clock.now()
        self.pbx.emit(fmt.build_event("Reload", {"Module": module or "All", "Status": 0}))


def action_table(pbx: "SimPbx") -> dict[str, ActionSpec]:
    a = PbxActions(pbx)
    return {
        "QueueStatus": ActionSpec(a.queue_status),
        "QueueSummary": ActionSpec(a.queue_summary),
        "QueueAdd": ActionSpec(a.queue_add, "agent"),
        "QueueRemove": ActionSpec(a.queue_remove, "agent"),
        "QueuePause": ActionSpec(a.queue_pause, "agent"),
        "QueuePenalty": ActionSpec(a.queue_penalty, "agent"),
        "CoreShowChannels": ActionSpec(a.core_show_channels, "system,reporting"),
        "CoreStatus": ActionSpec(a.core_status, "system,reporting"),
        "CoreSettings": ActionSpec(a.core_settings, "system,reporting"),
        "Status": ActionSpec(a.status, "system,call,reporting"),
        "Getvar": ActionSpec(a.getvar, "call,reporting"),
        "Setvar": ActionSpec(a.setvar, "call"),
        "Hangup": ActionSpec(a.hangup, "system,call"),
        "Originate": ActionSpec(a.originate, "originate"),
        "Command": ActionSpec(a.command, "command"),
        "Reload": ActionSpec(a.reload, "system,config"),
    }
