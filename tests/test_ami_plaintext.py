"""Issue 17, item 8: an AMI peer that refuses the MD5 Challenge never gets ami.secret in clear
(a real TCP peer on loopback), unless ami.allow_plaintext_login = true."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_ami_link import SECRET, CaptureLists, FakeAmi, _config

from cti.ami import AmiAuthError, AmiService
from cti.bus import InMemoryBus


class NoChallengeAmi(FakeAmi):
    """Answers ``Challenge`` with an error (as a downgrading man in the middle would) and accepts
    a plaintext ``Secret``."""

    async def _answer(self, idx: int, plan: dict[str, Any], act: dict[str, str], w: asyncio.StreamWriter) -> None:
        aid = act.get("ActionID", "")
        if act["Action"] == "Challenge":
            w.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: Must specify AuthType\r\n\r\n".encode())
            await w.drain()
            return
        if act["Action"] == "Login" and act.get("Secret") == self.secret:
            w.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n".encode()
                    + self.lists.fully_booted)
            await w.drain()
            return
        await super()._answer(idx, plan, act, w)


@pytest.fixture
async def downgrade(captures: Path):
    f = NoChallengeAmi(CaptureLists(captures))
    yield f
    await f.close()


async def test_a_refused_challenge_does_not_send_the_secret_in_clear(downgrade: NoChallengeAmi) -> None:
    port = await downgrade.start()
    svc = AmiService(_config(port), InMemoryBus())
    with pytest.raises(AmiAuthError) as exc:
        await svc.start()
    try:
        assert "ami.allow_plaintext_login" in str(exc.value)
        assert all(SECRET not in repr(a) for s in downgrade.sessions for a in s)
        assert [a["Action"] for a in downgrade.sessions[0]] == ["Challenge"]
    finally:
        await svc.stop()


async def test_plaintext_login_only_when_allowed(downgrade: NoChallengeAmi) -> None:
    port = await downgrade.start()
    svc = AmiService(_config(port, allow_plaintext_login=True), InMemoryBus())
    await svc.start()
    try:
        await asyncio.wait_for(svc.wait_ready(), 10)
        assert any(a.get("Secret") == SECRET for a in downgrade.sessions[0])
    finally:
        await svc.stop()
