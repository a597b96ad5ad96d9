"""The shipped ``eventfilter`` of the AMI user ``cti``, in a REAL Asterisk (``CTI_ASTERISK_BIN``).

On Asterisk 12.0-15.x ``Newexten`` is in the ``call`` class, which cti reads, so the filter,
not the read classes, is what keeps raw dialplan data away from cti there. To see it work on
Asterisk 22 the copy grants ``cti`` every class (``read = all``, as a 12-15 PBX effectively
does for ``Newexten``) and keeps the shipped filter; a second PBX without the filter line shows
the same call does produce ``Newexten``/``VarSet`` for that user. And cti's version check reads
22.10.1 from ``CoreSettings`` as the shipped user.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator

import pytest

from asterisk_pbx import Pbx, ami_secret, requires_asterisk, running_pbx, set_line

pytestmark = [pytest.mark.asterisk, requires_asterisk]

#: A dialplan that makes Newexten and VarSet events (and Newchannel/Hangup around them).
FILTER_CONTEXT = """\
[cti-filter-test]
exten => s,1,NoOp(Event: Newexten)
 same => n,Set(CTI_TEST=Event: VarSet)
 same => n,Hangup()
"""


def _edit(keep_filter: bool):
    def edit(etc: Path) -> None:
        manager = etc / "manager.conf"
        set_line(manager, r"^read = system,call,agent,user,reporting$", "read = all")
        if not keep_filter:
            set_line(manager, r"^eventfilter = .*$", "")
        (etc / "extensions.conf").write_text((etc / "extensions.conf").read_text() + "\n#include cti-filter.conf\n")
        (etc / "cti-filter.conf").write_text(FILTER_CONTEXT)
    return edit


@pytest.fixture(scope="module", params=[True, False], ids=["shipped-filter", "no-filter"])
def pbx(request: pytest.FixtureRequest) -> Iterator[tuple[Pbx, bool]]:
    with running_pbx("cti-ast-filter-", edit=_edit(request.param)) as running:
        yield running, request.param


async def _events_of_one_call(port: int) -> list[dict[str, str]]:
    """Log in as ``cti`` (all classes the user has), run the test context once, collect every event."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(f"Action: Login\r\nActionID: l1\r\nUsername: cti\r\nSecret: {ami_secret('cti')}\r\n"
                 "Events: on\r\n\r\n".encode())
    writer.write(b"Action: Originate\r\nActionID: o1\r\nChannel: Local/s@cti-filter-test\r\n"
                 b"Application: Wait\r\nData: 1\r\nAsync: true\r\n\r\n")
    await writer.drain()
    events: list[dict[str, str]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    try:
        while loop.time() < deadline:
            frame = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), deadline - loop.time())
            msg: dict[str, str] = {}
            for line in frame.decode("utf-8", "replace").split("\r\n"):
                key, sep, value = line.partition(": ")
                if sep and key not in msg:
                    msg[key] = value
            if "Event" in msg:
                events.append(msg)
            if msg.get("Event") == "Hangup" and msg.get("Channel", "").endswith(";1"):
                break  # the originated channel's side is gone: the call is over
    finally:
        writer.close()
    return events


async def test_shipped_filter_keeps_newexten_and_varset_from_cti_even_with_every_class(
        pbx: tuple[Pbx, bool]) -> None:
    running, filtered = pbx
    events = await _events_of_one_call(running.ami_port)
    names = {e["Event"] for e in events}
    assert {"Newchannel", "Hangup"} <= names, names  # the call happened and the user got its events
    if filtered:
        assert not names & {"Newexten", "VarSet"}, sorted(names)
        warnings = [ln for ln in running.messages().splitlines() if " manager.c:" in ln and
                    ("WARNING" in ln or "ERROR" in ln)]
        assert warnings == []
    else:  # the control: without the filter, the same call sends them to this user
        assert {"Newexten", "VarSet"} <= names, sorted(names)


@pytest.fixture(scope="module")
def shipped_pbx() -> Iterator[Pbx]:
    with running_pbx("cti-ast-version-") as running:
        yield running


async def test_cti_reads_the_real_asterisk_version_with_the_shipped_user(shipped_pbx: Pbx) -> None:
    """CoreSettings is allowed to the shipped cti user (write = reporting): 22.10.1 passes the check."""
    from structlog.testing import capture_logs

    from cti.ami import AmiService
    from cti.bus import InMemoryBus
    from cti.config import AmiConfig

    cfg = AmiConfig(host="127.0.0.1", port=shipped_pbx.ami_port, username="cti", secret=ami_secret("cti"),
                    min_version_policy="refuse", server="real")
    svc = AmiService(cfg, InMemoryBus())
    with capture_logs() as logs:
        await svc.start()
        try:
            await svc.wait_ready()
            version = svc.link.pbx_version
        finally:
            await svc.stop()
    assert version is not None and (version.asterisk, version.ami, version.unsafe) == ("22.10.1", "11.0.0", False)
    assert [e["event"] for e in logs if e["event"].startswith("ami.pbx_version")] == ["ami.pbx_version"]
