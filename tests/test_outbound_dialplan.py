"""The ``[cti-outbound]`` context (dialplans/outbound.conf): what cti's follow-up Originate enters once
the agent's phone answers (cti/outbound/service.py: Channel = agent's interface, Context cti-outbound,
Exten = the customer's E.164 digits without "+").

Always: ``cti dialplan check``'s checker is clean on the shipped files and the context is there, reached
only by Originate, logging nothing about the customer. With ``CTI_ASTERISK_BIN``: a real Asterisk loads
it (``dialplan show cti-outbound``) and cti's own AmiService, as the least-privilege AMI user, originates
to a stand-in agent; the call reaches a stand-in trunk (a Local channel into a test context that records
the number it was dialed with and the caller ID) with the national / international prefixes applied.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from asterisk_pbx import BIN, ami_secret, requires_asterisk, running_pbx, set_line
from cti.config import AmiConfig, Settings
from cti.dialplan.checks import check_tree
from cti.dialplan.conf import read_conf
from cti.dialplan.model import build_dialplan

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "asterisk-config"
DIALPLANS = ROOT / "dialplans"
real = requires_asterisk


# -- static -----------------------------------------------------------------------------------------
def test_the_checker_is_clean_and_the_context_is_there() -> None:
    report = check_tree(ROOT, Settings())
    assert not report.errors, [str(f) for f in report.errors]
    assert not [f for f in report.findings if "outbound" in str(f.file or "")], report.findings
    ext = (CONF / "extensions.conf").read_text()
    assert re.search(r"^#include dialplans/outbound\.conf$", ext, re.M)
    for name in ("OUTBOUND_DIAL_PREFIX", "OUTBOUND_DIAL_SUFFIX", "OUTBOUND_COUNTRY_CODE", "OUTBOUND_NATIONAL_PREFIX",
                 "OUTBOUND_INTL_PREFIX", "OUTBOUND_DIAL_TIMEOUT", "CTI_LINE_NUMBER"):
        assert re.search(rf"^{name}=", ext, re.M), name
    plan = build_dialplan(read_conf(CONF / "extensions.conf", [CONF, ROOT]))
    assert "cti-outbound" in plan.contexts
    # reached only by cti's Originate: no phone or trunk context includes it
    assert all(name != "cti-outbound" for _ctx, name, _f, _l in plan.include_lines)


def test_no_customer_data_in_log_lines() -> None:
    text = (DIALPLANS / "outbound.conf").read_text()
    for line in text.splitlines():
        if re.search(r"\b(NoOp|Verbose|Log|UserEvent)\(", line):
            assert not re.search(r"EXTEN|CALLERID|CTI_DIAL_NUMBER|CONNECTEDLINE", line), line


def test_the_service_dials_into_the_context_the_dialplan_defines() -> None:
    from cti.outbound.config import OutboundConfig
    from cti.outbound.service import OutboundService

    assert OutboundService(None).context == "cti-outbound" == OutboundConfig().build().context


# -- a real Asterisk ------------------------------------------------------------------------------------
TEST_CONTEXTS = """\
; test only: the agent's phone answers; the "trunk" records what it was dialed with
[cti-test-agent]
exten => _X.,1,Answer()
 same => n,Wait(10)
 same => n,Hangup()

[cti-test-trunk]
exten => _X.,1,Set(DB(ctitrunk/${EXTEN})=${CALLERID(num)}/${CALLERID(name)})
 same => n,Answer()
 same => n,Wait(1)
 same => n,Hangup()
"""


class Ast:
    def __init__(self, conf: Path, ami_port: int, log: Path) -> None:
        self.conf, self.ami_port, self.log = conf, ami_port, log

    def cli(self, command: str, timeout: float = 15) -> str:
        return subprocess.run([BIN, "-C", str(self.conf), "-rx", command], capture_output=True, text=True,
                              timeout=timeout).stdout

    def trunk_got(self, number: str) -> str | None:
        out = self.cli(f"database get ctitrunk {number}")
        m = re.search(r"^Value: (.*)$", out, re.M)
        return m.group(1) if m else None


@pytest.fixture(scope="module")
def ast() -> Iterator[Ast]:
    def edit(etc: Path) -> None:
        # the only changes: the trunk is a Local channel into the test context
        set_line(etc / "extensions.conf", r"^OUTBOUND_DIAL_PREFIX=.*$", "OUTBOUND_DIAL_PREFIX=Local/")
        set_line(etc / "extensions.conf", r"^OUTBOUND_DIAL_SUFFIX=.*$", "OUTBOUND_DIAL_SUFFIX=@cti-test-trunk")
        (etc / "extensions.conf").write_text((etc / "extensions.conf").read_text() + "\n#include cti-test.conf\n")
        (etc / "cti-test.conf").write_text(TEST_CONTEXTS)

    with running_pbx("cti-ast-out-", edit=edit) as pbx:
        yield Ast(pbx.conf, pbx.ami_port, pbx.log)


@real
def test_real_asterisk_loads_the_context(ast: Ast) -> None:
    shown = ast.cli("dialplan show cti-outbound")
    assert "[ Context 'cti-outbound' created by 'pbx_config' ]" in shown, shown
    assert "-= 1 extension (16 priorities) in 1 context. =-" in shown, shown
    assert "'_X.' =>" in shown and "Dial(${OUTBOUND_DIAL_PREFIX}${CTI_DIAL_NUMBER}${OUTBOUND_DIAL_SUFFIX}" in shown
    log = ast.log.read_text(errors="replace") if ast.log.exists() else ""
    bad = [line for line in log.splitlines() if ("WARNING" in line or "ERROR" in line) and "outbound" in line]
    assert not bad, bad
    assert "OUTBOUND_DIAL_PREFIX=Local/" in ast.cli("dialplan show globals")


@real
@pytest.mark.parametrize("e164_digits, dialed", [
    ("8613800000001", "13800000001"),      # Chinese mobile: national, no prefix
    ("862155551234", "02155551234"),       # Shanghai landline: national prefix 0
    ("12125550100", "0012125550100"),      # another country: international prefix 00
])
async def test_cti_originate_reaches_the_trunk_with_the_800_line_as_caller_id(
        ast: Ast, e164_digits: str, dialed: str) -> None:
    from cti.ami.service import AmiService
    from cti.bus import InMemoryBus

    bus = InMemoryBus()
    results = bus.subscribe("call.originate_result")
    ami = AmiService(AmiConfig(port=ast.ami_port, username="cti", secret=ami_secret(), reconnect_min=0.05), bus, None)
    await ami.start()
    try:
        await ami.wait_ready(timeout=15)
        # exactly the Originate OutboundService.dial sends (the agent's interface is a stand-in)
        resp = await ami.originate("Local/1001@cti-test-agent", exten=e164_digits, context="cti-outbound", priority=1,
                                   caller_id=f'"Follow-up 7" <{e164_digits}>', timeout_ms=10000,
                                   variables={"CTI_FOLLOWUP_ID": "7", "CTI_ATTEMPT_ID": "9"})
        msg = await asyncio.wait_for(results.__anext__(), 15)
        assert msg.payload["action_id"] == resp.get("ActionID") and msg.payload["response"] == "Success", msg.payload
        deadline = time.monotonic() + 15
        while (got := ast.trunk_got(dialed)) is None:
            assert time.monotonic() < deadline, f"the trunk was never dialed with {dialed}"
            await asyncio.sleep(0.2)
        assert got == "8005551234/"  # the 800 line; neither the agent nor cti's "Follow-up" label
    finally:
        results.close()
        await ami.stop()


@real
@pytest.mark.parametrize("exten", ["8612a4567890", "86123"])
async def test_what_is_not_an_e164_number_never_reaches_the_trunk(ast: Ast, exten: str) -> None:
    def dialed() -> set[str]:
        return set(re.findall(r"^/ctitrunk/(\S+)", ast.cli("database show ctitrunk"), re.M))

    def refused() -> int:
        return ast.log.read_text(errors="replace").count("not an E.164 number, not dialed")

    before, seen = dialed(), refused()
    done = ast.cli(f"channel originate Local/1002@cti-test-agent extension {exten}@cti-outbound")
    assert "failed" not in done.lower(), done
    deadline = time.monotonic() + 15
    while refused() == seen:  # the call took the "invalid" branch ...
        assert time.monotonic() < deadline, "the invalid branch was never taken"
        await asyncio.sleep(0.2)
    assert dialed() == before  # ... and the trunk was not dialed
