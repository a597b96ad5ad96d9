"""A real Asterisk for tests: our asterisk-config/ + dialplans/ in a private directory.

``tests/run.sh`` builds Asterisk 22.10.1 from Debian's source package once (``tests/asterisk.sh``,
cached in ``~/.cache/cti``) and sets ``CTI_ASTERISK_BIN``. Without it, the tests marked
``requires_asterisk`` are reported as skipped with the reason (``CTI_ASTERISK_UNAVAILABLE`` when the
build failed), never silently.

Asterisk runs unprivileged-style in a temporary directory (its own asterisk.conf with every
directory there, started with ``-C``) on a copy of the shipped files; a test changes only what it
must (free ports, test-only contexts in separate included files), through ``edit``.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import wave
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "asterisk-config"
DIALPLANS = ROOT / "dialplans"
BIN = os.environ.get("CTI_ASTERISK_BIN", "")


def _skip_reason() -> str:
    if os.environ.get("CTI_ASTERISK_UNAVAILABLE"):
        return os.environ["CTI_ASTERISK_UNAVAILABLE"]
    if not BIN:
        return "CTI_ASTERISK_BIN is not set (bash tests/run.sh builds Asterisk and sets it)"
    return f"CTI_ASTERISK_BIN={BIN} is not an executable"


HAVE_ASTERISK = bool(BIN and os.access(BIN, os.X_OK))
requires_asterisk = pytest.mark.skipif(not HAVE_ASTERISK, reason=_skip_reason())


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_wav(path: Path, seconds: float, hz: float = 440.0) -> None:
    """An 8 kHz mono 16-bit WAV, the format cti writes its sounds in."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * hz * n / 8000))) for n in range(int(8000 * seconds)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)


def module_dir(binary: Path) -> Path:
    prefix = binary.resolve().parent.parent
    candidates = [os.environ.get("CTI_ASTERISK_MODDIR", ""), str(prefix / "lib" / "asterisk" / "modules"),
                  str(prefix / "lib64" / "asterisk" / "modules"), "/usr/lib/asterisk/modules",
                  "/usr/lib/x86_64-linux-gnu/asterisk/modules"]
    for c in candidates:
        if c and (Path(c) / "app_queue.so").exists():
            return Path(c)
    pytest.fail(f"no Asterisk modules found next to {binary} (set CTI_ASTERISK_MODDIR)")


def documentation_dir(binary: Path) -> Path | None:
    prefix = binary.resolve().parent.parent
    for c in (prefix / "var" / "lib" / "asterisk" / "documentation", Path("/var/lib/asterisk/documentation"),
              Path("/usr/share/asterisk/documentation")):
        if (c / "core-en_US.xml").exists():
            return c
    return None


def ami_secret(user: str = "cti") -> str:
    """The secret of an AMI user in the shipped manager.conf."""
    section = (CONF / "manager.conf").read_text().split(f"[{user}]", 1)[1]
    return re.search(r"^secret\s*=\s*(\S+)", section, re.M).group(1)


def set_line(path: Path, pattern: str, replacement: str) -> None:
    """Replace the one line matching ``pattern`` (a regex anchored at line start) in a config copy."""
    text = path.read_text()
    new, count = re.subn(pattern, replacement, text, count=1, flags=re.M)
    assert count == 1, f"{pattern!r} not found in {path.name}"
    path.write_text(new)


@dataclass
class Pbx:
    """A running Asterisk in ``root``; ``etc`` is its configuration directory."""

    root: Path
    etc: Path
    conf: Path
    ami_port: int
    agi_port: int
    sip_port: int
    process: subprocess.Popen = field(repr=False)
    startup_log: str = field(default="", repr=False)

    @property
    def log(self) -> Path:
        return self.root / "log" / "messages.log"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def cli(self, command: str, timeout: float = 15) -> str:
        done = subprocess.run([BIN, "-C", str(self.conf), "-rx", command], capture_output=True, text=True, timeout=timeout)
        return done.stdout

    def messages(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_booted(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                out = (self.root / "stdout.txt").read_text(errors="replace")[-3000:]
                pytest.fail(f"asterisk exited with {self.process.returncode}: {out}")
            if (self.root / "run" / "asterisk.ctl").exists():
                try:
                    up = "Asterisk" in self.cli("core show version", timeout=5)
                    if up and subprocess.run([BIN, "-C", str(self.conf), "-rx", "core waitfullybooted"],
                                             capture_output=True, timeout=30).returncode == 0:
                        return
                except subprocess.TimeoutExpired:
                    pass
            if time.monotonic() > deadline:
                pytest.fail(f"asterisk did not boot within {timeout} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.cli("core stop now", timeout=10)
                self.process.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                self.process.kill()
                self.process.wait(timeout=5)


@contextmanager
def running_pbx(prefix: str = "cti-ast-", *, edit: Callable[[Path], None] | None = None,
                sounds: dict[str, float] | None = None, verbose: int = 3) -> Iterator[Pbx]:
    """Start Asterisk on a copy of the shipped configuration; stop it and remove everything after.

    The copy differs from the shipped files only in the AMI port, the ``CTI_PORT`` global, the UDP
    SIP transport's port (all free ports) and what ``edit(etc)`` changes. ``sounds`` are test tones
    written under ``sounds/`` (name → seconds).
    """
    if not HAVE_ASTERISK:
        pytest.skip(_skip_reason())
    binary = Path(BIN)
    root = Path(tempfile.mkdtemp(prefix=prefix))
    etc = root / "etc"
    shutil.copytree(CONF, etc)
    shutil.copytree(DIALPLANS, etc / "dialplans")
    ami_port, agi_port, sip_port = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    set_line(etc / "manager.conf", r"^port = 5038$", f"port = {ami_port}")
    set_line(etc / "extensions.conf", r"^CTI_PORT=4573$", f"CTI_PORT={agi_port}")
    set_line(etc / "pjsip.conf", r"^bind = 0\.0\.0\.0:5060$", f"bind = 127.0.0.1:{sip_port}")
    if edit:
        edit(etc)
    data = root / "data"
    for name, seconds in (sounds or {}).items():
        write_wav(data / "sounds" / f"{name}.wav", seconds)
    write_wav(data / "moh" / "hold.wav", 2.0, hz=330.0)
    docs = documentation_dir(binary)
    if docs:  # without it Asterisk 22 refuses to start (stasis)
        (data / "documentation").symlink_to(docs)
    for d in ("lib", "db", "keys/keys", "agi-bin", "spool/monitor", "run", "log", "cache"):
        (root / d).mkdir(parents=True, exist_ok=True)
    conf = root / "asterisk.conf"
    conf.write_text(
        "[directories]\n"
        f"astcachedir => {root}/cache\nastetcdir => {etc}\nastmoddir => {module_dir(binary)}\n"
        f"astvarlibdir => {root}/lib\nastdbdir => {root}/db\nastkeydir => {root}/keys\n"
        f"astdatadir => {data}\nastagidir => {root}/agi-bin\nastspooldir => {root}/spool\n"
        f"astrundir => {root}/run\nastlogdir => {root}/log\nastsbindir => {binary.resolve().parent}\n"
        f"[options]\nverbose = {verbose}\n"
    )
    out = open(root / "stdout.txt", "wb")
    process = subprocess.Popen([BIN, "-C", str(conf), "-f", "-n"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    pbx = Pbx(root, etc, conf, ami_port, agi_port, sip_port, process)
    try:
        pbx.wait_booted()
        pbx.startup_log = pbx.messages()
        yield pbx
    finally:
        pbx.stop()
        out.close()
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- a small AMI client


class Ami:
    """Just enough AMI for the tests: actions with ActionID, and a list of events."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []
        self._pending: dict[str, asyncio.Future] = {}
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)

    async def connect(self, port: int, username: str, secret: str) -> dict[str, str]:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.banner = (await self.reader.readline()).decode()
        self._task = asyncio.create_task(self._read())
        return await self.action("Login", Username=username, Secret=secret, Events="on")

    async def _read(self) -> None:
        while True:
            try:
                frame = await self.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            msg: dict[str, str] = {}
            for line in frame.decode("utf-8", "replace").split("\r\n"):
                key, sep, value = line.partition(": ")
                if sep and key not in msg:
                    msg[key] = value
            if "Event" in msg:
                msg["_t"] = str(time.monotonic())
                self.events.append(msg)
                self._changed.set()
            elif msg.get("ActionID") in self._pending:
                self._pending.pop(msg["ActionID"]).set_result(msg)

    async def action(self, name: str, timeout: float = 10, **headers: str) -> dict[str, str]:
        action_id = f"t{next(self._ids)}"
        fut = asyncio.get_running_loop().create_future()
        self._pending[action_id] = fut
        lines = [f"Action: {name}", f"ActionID: {action_id}"] + [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()
        return await asyncio.wait_for(fut, timeout)

    async def wait_for(self, predicate: Callable[[dict[str, str]], bool], timeout: float = 15) -> dict[str, str]:
        deadline = asyncio.get_running_loop().time() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                names = [e.get("Event") for e in self.events[-30:]]
                raise AssertionError(f"no matching AMI event within {timeout} s; last events: {names}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        try:
            await self.action("Logoff", timeout=3)
        except (asyncio.TimeoutError, ConnectionError):
            pass
        self.writer.close()
        self._task.cancel()
