"""A real ``cti serve`` process on loopback for the attack tests (issue 17): ports, limits, log file."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _limit_fds(n: int):  # noqa: ANN202 - preexec_fn
    def apply() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return apply


@dataclass
class DaemonProc:
    proc: asyncio.subprocess.Process
    http_port: int
    agi_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def start_daemon(tmp_path: Path, env: dict[str, str] | None = None, *, nofile: int | None = None,
                       timeout: float = 60.0) -> DaemonProc:
    """``cti serve`` with SQLite in ``tmp_path``, AMI off, fresh ports; returns once HTTP answers."""
    http_port, agi_port = free_port(), free_port()
    full = {k: v for k, v in os.environ.items() if not k.startswith("CTI_")}
    full.update({"CTI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}", "CTI_AMI_ENABLED": "false",
                 "CTI_AGI_PORT": str(agi_port), "CTI_HTTP_PORT": str(http_port),
                 "CTI_GREETING_SOUNDS_DIR": str(tmp_path / "sounds"), "CTI_LOG_FORMAT": "json"})
    full.update(env or {})
    log = tmp_path / f"daemon-{http_port}.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cti.cli import main; main()", "serve", env=full,
        stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_limit_fds(nofile) if nofile else None)
    d = DaemonProc(proc, http_port, agi_port, log)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            if proc.returncode is not None:
                raise AssertionError(f"cti serve exited {proc.returncode}:\n{d.log_text()[-3000:]}")
            try:
                async with s.get(f"{d.url}/api/me", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status in (200, 401):
                        return d
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if time.monotonic() > deadline:
                await d.stop()
                raise AssertionError(f"cti serve did not answer within {timeout} s:\n{d.log_text()[-3000:]}")
            await asyncio.sleep(0.2)


async def add_agent(db_url: str, username: str, password: str, **kw: Any) -> None:
    """An account in the daemon's database (the schema is the daemon's own)."""
    from cti.agents.accounts import add_agent as insert_agent
    from cti.agents.passwords import hash_password
    from cti.db.engine import create_engine, sessionmaker

    engine = create_engine(db_url)
    try:
        async with sessionmaker(engine)() as session, session.begin():
            await insert_agent(await session.connection(), username, hash_password(password), **kw)
    finally:
        await engine.dispose()
