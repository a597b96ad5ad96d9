"""Issue 17, item 12: ``cti serve`` refuses a placeholder/empty AMI secret towards a non-loopback Asterisk,
and warns when it listens off loopback in clear."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from cti.config import ConfigError, load_settings
from cti.exposure import check_exposure


async def _serve(tmp_path: Path, env: dict[str, str]) -> tuple[int | None, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    full.update({"CTI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}", "CTI_AGI_PORT": "0",
                 "CTI_HTTP_PORT": "0", "CTI_GREETING_SOUNDS_DIR": str(tmp_path / "sounds"), **env})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cti.cli import main; main()", "serve", env=full,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out = await asyncio.wait_for(proc.stdout.read(), 30)  # type: ignore[union-attr]
        await proc.wait()
        return proc.returncode, out.decode(errors="replace")
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return None, "still running"


@pytest.mark.parametrize("secret", ["", "change-me", "secret"])
async def test_serve_refuses_a_placeholder_ami_secret_off_loopback(tmp_path: Path, secret: str) -> None:
    code, out = await _serve(tmp_path, {"CTI_AMI_HOST": "192.0.2.10", "CTI_AMI_SECRET": secret})
    assert code not in (None, 0), out
    assert "ami.secret" in out and "placeholder" in out


def test_a_real_secret_or_loopback_is_fine() -> None:
    assert check_exposure(load_settings(None, env={"CTI_AMI_SECRET": ""})) == []  # loopback: the demo
    check_exposure(load_settings(None, env={"CTI_AMI_HOST": "192.0.2.10", "CTI_AMI_SECRET": "Xk3-long-random-secret"}))


def test_an_endpoint_with_a_placeholder_secret_is_named() -> None:
    s = load_settings(None, env={"CTI_AMI_SECRET": "Xk3-long-random-secret", "CTI_AMI_ENDPOINTS":
                                 '[{"name": "bj", "host": "10.0.0.11"}, {"name": "sh", "host": "10.0.1.11", "secret": "change-me"}]'})
    with pytest.raises(ConfigError, match=r"ami\.endpoints\[1\]\.secret"):
        check_exposure(s)


def test_non_loopback_binds_are_warned_about() -> None:
    s = load_settings(None, env={"CTI_HTTP_HOST": "0.0.0.0", "CTI_AGI_HOST": "0.0.0.0"})
    with capture_logs() as logs:
        warnings = check_exposure(s)
    assert len(warnings) == 2 and "http.host" in warnings[0] and "agi.host" in warnings[1]
    assert [e["event"] for e in logs] == ["exposure", "exposure"]
