"""The shipped Asterisk configuration (asterisk-config/, dialplans/), checked without Asterisk.

pyst2's ``asterisk.config`` cannot read these files: it rejects template sections
(``[name](!)``, ``[name](template)``) and ``#include`` lines. So a small reader of
Asterisk's ini-like format lives here: it follows ``#include`` (paths relative to
/etc/asterisk, i.e. to asterisk-config/ or the repository root where dialplans/
lives), expands templates the way Asterisk does (the template's lines first, then
the section's own), strips ``;`` comments (``\\;`` is a literal semicolon) and keeps
``=`` / ``=>`` items in order. On top of it a tiny dialplan walker runs the 800 line
with the variables cti would set, so the fallback rules are checked as behaviour.

tests/test_asterisk_real.py loads the same files into a real Asterisk.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "asterisk-config"
DIALPLANS = ROOT / "dialplans"
QUEUES = {"complaints": "ringall", "appliances": "rrmemory", "mobile": "rrmemory"}


# The reader, the dialplan model and the walker live in cti.dialplan (cti dialplan check uses them).
from cti.dialplan.conf import Section, read_conf, sections_named  # noqa: E402
from cti.dialplan.model import Dialplan, jump_targets as _jump_targets, sample_for  # noqa: E402
from cti.dialplan.model import load_dialplan as _load_dialplan  # noqa: E402
from cti.dialplan.walker import Channel  # noqa: E402


def load_dialplan() -> Dialplan:
    return _load_dialplan(CONF / "extensions.conf")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def plan() -> Dialplan:
    return load_dialplan()


@pytest.fixture(scope="module")
def queues() -> dict[str, list[Section]]:
    return sections_named(read_conf(CONF / "queues.conf"))


@pytest.fixture(scope="module")
def manager() -> dict[str, list[Section]]:
    return sections_named(read_conf(CONF / "manager.conf"))


def cti_sets(**values: str) -> Callable[[Channel, str, list[str]], None]:
    """An AGI stand-in: route 'incoming' sets ``values``; route 'ivr' sets IVR_* values."""

    def agi(chan: Channel, url: str, args: list[str]) -> None:
        chan.vars.setdefault("_AGI", "")
        chan.vars["_AGI"] += url + "|" + ",".join(args) + ";"
        if url.endswith("/incoming"):
            chan.vars.update({k: v for k, v in values.items() if not k.startswith("IVR_")})
        elif url.endswith("/ivr"):
            chan.vars.update({k[4:]: v for k, v in values.items() if k.startswith("IVR_")})

    return agi


def cti_down(chan: Channel, url: str, args: list[str]) -> None:
    """AGI to an unreachable server: Asterisk sets AGISTATUS=FAILURE and goes on."""
    chan.vars["AGISTATUS"] = "FAILURE"


def connected(chan: Channel, name: str, args: list[str]) -> str | None:
    return None


def call(plan: Dialplan, agi, queue=connected, exten: str = "8005551234", context: str = "from-pstn", **vars_: str) -> Channel:
    chan = Channel(plan, agi, queue, set(QUEUES))
    chan.vars.update(vars_)
    chan.run(context, exten)
    return chan


# --------------------------------------------------------------------------- the files


def test_reader_follows_includes_and_templates() -> None:
    sections = read_conf(CONF / "extensions.conf")
    names = [s.name for s in sections]
    assert {"general", "globals", "from-pstn", "cti-inbound", "cti-transfer", "phones", "agents"} <= set(names)
    q = sections_named(read_conf(CONF / "queues.conf"))
    # template lines come first, the queue's own after: the first strategy is the queue's only one
    assert q["mobile"][0].templates == ("cti-queue",)
    assert q["mobile"][0].get("timeout") == "15"


def test_reader_rejects_a_missing_include(tmp_path: Path) -> None:
    bad = tmp_path / "extensions.conf"
    bad.write_text("[general]\n#include dialplans/nope.conf\n")
    with pytest.raises(FileNotFoundError):
        read_conf(bad)


def test_pyst2_cannot_read_template_sections() -> None:
    """Why this file carries its own reader (pyst2's asterisk.config is a dependency)."""
    from asterisk.config import Config, ParseError

    with pytest.raises(ParseError):
        Config(str(CONF / "queues.conf"))


def test_the_three_queues_exist_with_their_strategies(queues: dict[str, list[Section]]) -> None:
    for name, strategy in QUEUES.items():
        assert name in queues, name
        (section,) = queues[name]
        assert not section.is_template
        # app_queue takes the FIRST strategy line; it must be the queue's own
        assert section.first("strategy") == strategy
        assert section.values("strategy") == [strategy]


def test_no_static_members(queues: dict[str, list[Section]]) -> None:
    for name, found in queues.items():
        for section in found:
            assert not section.values("member"), f"[{name}] has static members: cti adds agents with QueueAdd"


def test_default_queue_exists_and_keeps_every_caller(plan: Dialplan, queues: dict[str, list[Section]]) -> None:
    default = plan.globals["DEFAULT_QUEUE"]
    assert default in QUEUES
    (section,) = queues[default]
    assert section.get("joinempty") in (None, "", "yes")
    assert section.get("leavewhenempty") in (None, "", "no")


def test_queues_set_interface_vars_and_wrapup(queues: dict[str, list[Section]]) -> None:
    for name in QUEUES:
        (section,) = queues[name]
        assert section.get("setinterfacevar") == "yes"
        assert int(section.get("timeout") or 0) > 0
        assert section.get("wrapuptime") is not None
        assert section.get("ringinuse") == "no"


def test_ami_listens_on_loopback_only(manager: dict[str, list[Section]]) -> None:
    (general,) = manager["general"]
    assert general.get("enabled") == "yes"
    assert general.get("bindaddr") == "127.0.0.1"
    assert general.get("webenabled") == "no"


def test_cti_ami_user_has_least_privilege(manager: dict[str, list[Section]]) -> None:
    (user,) = manager["cti"]
    read = {c.strip() for c in (user.get("read") or "").split(",")}
    write = {c.strip() for c in (user.get("write") or "").split(",")}
    assert "dialplan" not in read, "Newexten/VarSet carry raw caller data that forges AMI frames"
    assert not {"all", "cdr", "agi"} & read
    assert read == {"system", "call", "agent", "user", "reporting"}
    # "system" would grant GetConfig (every config file, SIP passwords included), ModuleLoad, DBPut
    assert not {"all", "command", "config", "dialplan", "system"} & write
    assert write == {"call", "agent", "originate", "reporting"}
    assert user.values("deny") == ["0.0.0.0/0.0.0.0"]
    assert user.values("permit") == ["127.0.0.1/255.255.255.255"]
    assert user.get("secret"), "a placeholder secret is documented"


def test_cti_ami_user_filters_out_newexten_and_varset_on_any_version(
        manager: dict[str, list[Section]], captures: Path) -> None:
    """Asterisk 12-15 put Newexten in the 'call' class: the user's eventfilter drops it (and VarSet).

    Asterisk applies a legacy filter as a POSIX extended regex (no newline mode) to the whole
    event text, which starts with its ``Event:`` line, exactly like the captured frames.
    (tests/test_ami_eventfilter_real.py checks the same line in a real Asterisk.)"""
    (user,) = manager["cti"]
    [legacy] = user.values("eventfilter")
    assert legacy.startswith("!"), "an exclude filter: every other event still reaches cti"
    regex = re.compile(legacy[1:].replace("[[:space:]]", r"\s"), re.S)
    frames = (captures / "ami-hostile-callerid.in.raw").read_bytes().decode("utf-8", "replace").split("\r\n\r\n")
    events = [f for f in frames if f.startswith("Event: ") and "\r\nPrivilege: " in f]
    dropped = {f.split("\r\n", 1)[0] for f in events if regex.search(f)}
    assert dropped == {"Event: Newexten", "Event: VarSet"}
    kept = [f for f in events if not regex.search(f)]
    assert any(f.startswith("Event: QueueCallerJoin") for f in kept)
    # a caller ID that reads like the filter hides nothing: the regex is anchored at the event's start
    assert not regex.search("Event: QueueCallerJoin\r\nPrivilege: agent,all\r\nCallerIDName: x\r\nEvent: Newexten\r\n")


def test_no_other_ami_users(manager: dict[str, list[Section]]) -> None:
    # cti-deploy: the deploy-only user of cti dialplan deploy (write = config); see cti/dialplan/reload.py
    assert set(manager) == {"general", "cti", "cti-deploy"}
    (deploy,) = manager["cti-deploy"]
    assert deploy.values("write") == ["config"] and not deploy.values("read")


def test_modules_required_by_the_800_line(tmp_path: Path) -> None:
    (mods,) = sections_named(read_conf(CONF / "modules.conf"))["modules"]
    required = set(mods.values("require"))
    assert {"pbx_config.so", "res_agi.so", "app_queue.so", "app_playback.so", "app_read.so", "app_exec.so"} <= required
    assert not required & set(mods.values("noload"))
    assert "chan_pjsip.so" not in mods.values("noload") and "res_pjsip.so" not in mods.values("noload")


def test_every_include_and_context_include_exists(plan: Dialplan) -> None:
    for ctx, incs in plan.includes.items():
        for inc in incs:
            assert inc in plan.contexts, f"[{ctx}] includes missing context {inc}"


def test_every_goto_target_exists(plan: Dialplan) -> None:
    checked = 0
    for ctx, extens in plan.contexts.items():
        for name, ext in extens.items():
            dialed = sample_for(name)
            for step in ext.steps:
                for target in _jump_targets(step):
                    chan = Channel(plan, cti_down, connected, set(QUEUES))
                    chan.exten = dialed
                    to_ctx, to_ext, label = chan._goto(chan.subst(target), ctx)
                    found = plan.find(to_ctx, to_ext)
                    assert found is not None, f"{step.where}: {to_ext}@{to_ctx} does not exist"
                    assert found.label_index(label) is not None, f"{step.where}: no {label!r} in {to_ext}@{to_ctx}"
                    checked += 1
    assert checked >= 10


def test_agi_routes_are_incoming_or_ivr(plan: Dialplan) -> None:
    routes = []
    for extens in plan.contexts.values():
        for ext in extens.values():
            for step in ext.steps:
                if step.app == "AGI":
                    url = step.data.split(",")[0]
                    m = re.fullmatch(r"agi://\$\{CTI_HOST\}:\$\{CTI_PORT\}/([a-z]+)", url)
                    assert m, f"{step.where}: AGI must use agi://${{CTI_HOST}}:${{CTI_PORT}}/<route>: {url}"
                    routes.append(m.group(1))
    assert set(routes) == {"incoming", "ivr"}
    assert plan.globals["CTI_HOST"] == "127.0.0.1" and plan.globals["CTI_PORT"] == "4573"


def test_no_caller_data_in_log_applications(plan: Dialplan) -> None:
    for extens in plan.contexts.values():
        for ext in extens.values():
            for step in ext.steps:
                if step.app in ("NoOp", "Verbose", "Log", "UserEvent"):
                    assert "CALLERID" not in step.data and "CONNECTEDLINE" not in step.data, step.where


def test_fallback_test_comes_between_the_agi_and_any_cti_sound_or_queue(plan: Dialplan) -> None:
    steps = plan.contexts["cti-inbound"]["_X."].steps
    agi = next(i for i, s in enumerate(steps) if s.app == "AGI" and "/incoming" in s.data)
    check = next(i for i, s in enumerate(steps) if s.app == "GotoIf" and '"${CTI_QUEUE}" = ""' in s.data)
    first_queue = next(i for i, s in enumerate(steps) if s.app == "Queue")
    first_sound = next(i for i, s in enumerate(steps) if "CTI_GREETING" in s.data and "Playback" in s.data)
    clear = next(i for i, s in enumerate(steps) if s.app == "Set" and s.data == "CTI_QUEUE=")
    assert clear < agi < check < first_sound < first_queue


# --------------------------------------------------------------------------- the 800 line as behaviour


def test_cti_down_goes_straight_to_the_default_queue_without_sounds(plan: Dialplan) -> None:
    chan = call(plan, cti_down)
    assert chan.apps("Queue") == ["appliances,t,,,"]
    assert chan.apps("Playback") == []
    assert "QUEUE_PRIO" not in chan.vars


def test_stale_cti_vars_from_another_leg_are_cleared_before_the_agi(plan: Dialplan) -> None:
    chan = call(plan, cti_down, CTI_QUEUE="complaints", CTI_PRIORITY="10", CTI_GREETING="cti/x")
    assert chan.apps("Queue") == ["appliances,t,,,"]
    assert chan.apps("Playback") == []


def test_agi_failure_status_with_variables_set_still_uses_ctis_queue(plan: Dialplan) -> None:
    def agi(chan: Channel, url: str, args: list[str]) -> None:
        chan.vars.update(CTI_QUEUE="mobile", CTI_PRIORITY="5", CTI_LANG="en", AGISTATUS="FAILURE")

    chan = call(plan, agi)
    assert chan.apps("Queue") == ["mobile,t,,,300"]
    assert chan.vars["QUEUE_PRIO"] == "5"


def test_ctis_queue_priority_and_greeting(plan: Dialplan) -> None:
    chan = call(plan, cti_sets(CTI_QUEUE="complaints", CTI_PRIORITY="10", CTI_GREETING="cti/greet-42-ab12", CTI_LANG="zh", CTI_ACTION="queue"))
    assert chan.apps("Playback") == ["cti/greet-42-ab12,noanswer"]
    assert chan.apps("Queue") == ["complaints,t,,,300"]
    assert chan.vars["QUEUE_PRIO"] == "10"
    assert chan.apps("AGI") == ["agi://127.0.0.1:4573/incoming"]


def test_no_greeting_no_playback(plan: Dialplan) -> None:
    chan = call(plan, cti_sets(CTI_QUEUE="mobile", CTI_LANG="en"))
    assert chan.apps("Playback") == []
    assert chan.apps("Queue") == ["mobile,t,,,300"]
    assert "QUEUE_PRIO" not in chan.vars


def test_unknown_queue_from_cti_goes_to_the_default_queue(plan: Dialplan) -> None:
    chan = call(plan, cti_sets(CTI_QUEUE="no-such-queue", CTI_GREETING="cti/greet-generic-zh"))
    assert chan.apps("Queue") == ["appliances,t,,,"]


def test_after_hours_plays_the_message_and_hangs_up(plan: Dialplan) -> None:
    chan = call(plan, cti_sets(CTI_QUEUE="appliances", CTI_ACTION="afterhours", CTI_LANG="en", CTI_GREETING="cti/greet-generic-en"))
    assert chan.apps("Playback") == ["cti/greet-generic-en,noanswer", "cti/afterhours-en,noanswer"]
    assert chan.apps("Queue") == []
    assert chan.trace[-1][0] == "Hangup"


def test_ivr_reads_a_digit_and_asks_cti_again(plan: Dialplan) -> None:
    agi = cti_sets(CTI_QUEUE="appliances", CTI_ACTION="ivr", CTI_LANG="zh", IVR_CTI_QUEUE="complaints", IVR_CTI_PRIORITY="3")
    chan = call(plan, agi, _DTMF="2")
    assert chan.apps("Read") == ["CTI_DIGIT,cti/ivr-menu-zh,1,,2,5"]
    assert chan.apps("AGI") == ["agi://127.0.0.1:4573/incoming", "agi://127.0.0.1:4573/ivr,2"]
    assert chan.apps("Queue") == ["complaints,t,,,300"]
    assert chan.vars["QUEUE_PRIO"] == "3"


def test_ivr_agi_failure_keeps_the_first_answer(plan: Dialplan) -> None:
    def agi(chan: Channel, url: str, args: list[str]) -> None:
        if url.endswith("/incoming"):
            chan.vars.update(CTI_QUEUE="mobile", CTI_ACTION="ivr", CTI_LANG="en")

    chan = call(plan, agi)
    assert chan.apps("Read") == ["CTI_DIGIT,cti/ivr-menu-en,1,,2,5"]
    assert chan.apps("Queue") == ["mobile,t,,,300"]


def test_bad_language_falls_back_to_the_default_language(plan: Dialplan) -> None:
    chan = call(plan, cti_sets(CTI_QUEUE="mobile", CTI_ACTION="afterhours", CTI_LANG="fr\nx"))
    assert chan.apps("Playback") == ["cti/afterhours-zh,noanswer"]


@pytest.mark.parametrize("status", ["JOINEMPTY", "LEAVEEMPTY", "TIMEOUT", "FULL", "JOINUNAVAIL"])
def test_a_skill_queue_that_gives_up_overflows_to_the_default_queue(plan: Dialplan, status: str) -> None:
    tried: list[str] = []

    def queue(chan: Channel, name: str, args: list[str]) -> str | None:
        tried.append(name)
        return status if name == "complaints" else None

    chan = call(plan, cti_sets(CTI_QUEUE="complaints", CTI_PRIORITY="7"), queue)
    assert tried == ["complaints", "appliances"]
    assert chan.apps("Queue") == ["complaints,t,,,300", "appliances,t,,,"]
    assert chan.vars["QUEUE_PRIO"] == "7"
    assert chan.vars["CTI_OVERFLOW_FROM"] == "complaints"


def test_default_queue_giving_up_ends_with_a_message_not_a_loop(plan: Dialplan) -> None:
    chan = call(plan, cti_down, lambda chan, name, args: "FULL")
    assert chan.apps("Queue") == ["appliances,t,,,"]
    assert chan.apps("Playback") == ["cti/afterhours-zh,noanswer"]
    assert chan.trace[-1][0] == "Hangup"


@pytest.mark.parametrize(("context", "exten"), [("from-pstn", "s"), ("cti-inbound", "s"), ("cti-inbound", "+8005551234"), ("cti-inbound", "4001234567")])
def test_every_entry_reaches_the_cti_agi(plan: Dialplan, context: str, exten: str) -> None:
    seen: list[str] = []

    def agi(chan: Channel, url: str, args: list[str]) -> None:
        seen.append(chan.exten)
        chan.vars["CTI_QUEUE"] = "mobile"

    chan = call(plan, agi, exten=exten, context=context)
    assert chan.apps("Queue") == ["mobile,t,,,300"]
    expected = exten.lstrip("+") if exten != "s" else plan.globals["CTI_LINE_NUMBER"]
    assert seen == [expected]


def test_transfer_to_a_queue_and_to_an_unknown_name(plan: Dialplan) -> None:
    chan = call(plan, cti_down, exten="mobile", context="cti-transfer")
    assert chan.apps("Queue") == ["mobile,t"]
    chan = call(plan, cti_down, exten="nosuch", context="cti-transfer")
    assert chan.apps("Queue") == ["appliances,t"]


def test_phones_dial_the_pjsip_interface(plan: Dialplan) -> None:
    for number in ("1001", "1002", "2001", "2002", "3001", "3002"):
        chan = call(plan, cti_down, exten=number, context="agents")
        assert chan.apps("Dial") == [f"PJSIP/{number},30"]


def test_pjsip_sample_phones(tmp_path: Path) -> None:
    sections = sections_named(read_conf(CONF / "pjsip.conf"))
    assert sections["transport-udp"][0].get("type") == "transport"
    for number in ("1001", "1002", "2001", "2002", "3001", "3002"):
        kinds = {s.get("type"): s for s in sections[number]}
        endpoint, aor = kinds["endpoint"], kinds["aor"]
        auth = sections[endpoint.get("auth")][0]
        assert auth.get("type") == "auth" and auth.get("username") == number
        assert endpoint.get("aors") == number and endpoint.get("context") == "agents"
        assert aor.get("max_contacts") == "1"


def test_asterisklint_finds_nothing(tmp_path: Path) -> None:
    """asterisklint (a project dependency) checks the dialplan as Asterisk would parse it."""
    lint = shutil.which("asterisklint") or str(Path(sys.executable).with_name("asterisklint"))
    if not Path(lint).exists():
        pytest.skip("asterisklint is not installed")
    etc = tmp_path / "etc"
    shutil.copytree(CONF, etc)
    shutil.copytree(DIALPLANS, etc / "dialplans")
    done = subprocess.run([lint, "dialplan-check", "extensions.conf"], cwd=etc, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == "", done.stdout + done.stderr


def test_config_matches_ctis_defaults(plan: Dialplan, queues: dict[str, list[Section]], manager: dict[str, list[Section]]) -> None:
    """The names both sides must agree on, against cti's own defaults (cti/config.py)."""
    from cti.config import AgiConfig, AmiConfig, GreetingConfig, RoutingConfig

    routing = RoutingConfig()
    real_queues = {name for name, found in queues.items() if not found[0].is_template and name != "general"}
    assert real_queues == set(routing.queues) == set(QUEUES)
    assert plan.globals["DEFAULT_QUEUE"] == routing.default_queue
    assert plan.globals["DEFAULT_LANG"] == routing.default_language
    assert plan.globals["CTI_SOUNDS"] == GreetingConfig().sound_prefix
    assert int(plan.globals["CTI_PORT"]) == AgiConfig().port
    assert plan.globals["CTI_HOST"] == AgiConfig().host
    ami = AmiConfig()
    assert ami.username in manager and int(manager["general"][0].get("port")) == ami.port
