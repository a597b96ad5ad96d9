"""Real SIP around a real Asterisk: SIPp callers on a PSTN trunk, SIPp agents' phones, and cti.

No tests here; tests/test_sip_e2e.py uses it.

* **Asterisk** (``asterisk_pbx.running_pbx``) runs our shipped configuration plus two test-only
  files: a PJSIP trunk endpoint ``pstn`` identified by its address (127.0.0.2, so the agents'
  phones on 127.0.0.1 are told apart by their registration), whose context records what the caller
  hears (MixMonitor ``t()``) and then enters the shipped ``from-pstn``; and a callee context for
  the outbound trunk.
* **Phones**: each agent's phone is a SIPp process that REGISTERs as its shipped PJSIP endpoint
  (digest auth, ``register.xml``) and then answers on the same port (``agent.xml``: rings, answers,
  talks, hangs up; ``-aa`` answers Asterisk's qualify OPTIONS).
* **Callers**: one SIPp process per call (``caller.xml``) from 127.0.0.2, dialing the 800 line with
  a caller number and display name, sending RFC 2833 key presses from Debian sip-tester's pcaps.
* **cti**: the real daemon (:class:`cti.app.Daemon`) on the PBX's AMI and FastAGI ports, seeded with
  the ``cti`` command itself (``db init``, ``customers import``, ``agents add``, ``tickets create``,
  ``greetings build``), its greetings synthesized by espeak-ng + sox into the PBX's sounds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from asterisk_pbx import Pbx, ami_secret, free_port, set_line
from e2e_world import until

SIPP = shutil.which("sipp") or "sipp"
SCENARIOS = Path(__file__).resolve().parent / "sipp"
DTMF_PCAPS = Path("/usr/share/sip-tester")
CALLER_IP = "127.0.0.2"
PHONE_IP = "127.0.0.1"
AGENT_PASSWORD = "sip-agent-pw"
CTI = str(Path(sys.executable).with_name("cti"))
#: the SIPp callee of outbound calls (the customer's phone behind the trunk)
CALLEE_PORT = free_port(socket.SOCK_DGRAM)

TRUNK = """\
; test only: the PSTN trunk (SIPp callers come from 127.0.0.2)
[pstn]
type = endpoint
transport = transport-udp
context = cti-test-pstn
disallow = all
allow = ulaw
direct_media = no
dtmf_mode = rfc4733
rtp_symmetric = no
aors = pstn

[pstn]
type = identify
endpoint = pstn
match = 127.0.0.2

; where the trunk's outbound calls go: a SIPp callee (the customer) on 127.0.0.2
[pstn]
type = aor
contact = sip:127.0.0.2:{callee_port}
"""

TEST_CONTEXTS = """\
; test only: record what the caller hears (t() = audio sent to the caller), then the shipped trunk context
[cti-test-pstn]
exten => _X.,1,MixMonitor(mixed-${UNIQUEID}.wav,t(heard-${UNIQUEID}.wav))
 same => n,Goto(from-pstn,${EXTEN},1)

; test only: the outbound trunk is a SIPp callee on the pstn endpoint
[cti-test-callee]
exten => _X.,1,Dial(PJSIP/${EXTEN}@pstn,20)
"""

#: (username, PJSIP endpoint, skill queue, experienced) -- the shipped pjsip.conf's six phones
AGENTS = (
    ("mobile1", "1001", "mobile", False),
    ("mobile2", "1002", "mobile", False),
    ("appl1", "2001", "appliances", False),
    ("appl2", "2002", "appliances", False),
    ("compl1", "3001", "complaints", True),
    ("compl2", "3002", "complaints", True),
)


def pbx_edit(etc: Path) -> None:
    """The test-only additions to the copy of asterisk-config/ (see the module docstring)."""
    (etc / "pjsip.conf").write_text((etc / "pjsip.conf").read_text() + "\n#include pjsip-test.conf\n")
    (etc / "pjsip-test.conf").write_text(TRUNK.replace("{callee_port}", str(CALLEE_PORT)))
    # outbound: the trunk of dialplans/outbound.conf is the pstn endpoint, through the test context
    set_line(etc / "extensions.conf", r"^OUTBOUND_DIAL_PREFIX=.*$", "OUTBOUND_DIAL_PREFIX=Local/")
    set_line(etc / "extensions.conf", r"^OUTBOUND_DIAL_SUFFIX=.*$", "OUTBOUND_DIAL_SUFFIX=@cti-test-callee")
    (etc / "extensions.conf").write_text((etc / "extensions.conf").read_text() + "\n#include cti-test.conf\n")
    (etc / "cti-test.conf").write_text(TEST_CONTEXTS)


def render(template: str, out: Path, **values: object) -> Path:
    """A scenario of tests/sipp/ with its ``{name}`` placeholders filled in."""
    text = (SCENARIOS / f"{template}.xml").read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    out.write_text(text)
    return out


# ------------------------------------------------------------------------------------------- phones


@dataclass
class Phone:
    """An agent's SIP phone: a SIPp UAS registered as PJSIP endpoint ``endpoint``."""

    endpoint: str
    pbx: Pbx
    workdir: Path
    port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    media_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    ip: str = PHONE_IP
    registers: bool = True
    process: subprocess.Popen | None = None

    def register(self) -> None:
        log = self.workdir / f"register-{self.endpoint}.log"
        done = subprocess.run(
            [SIPP, f"127.0.0.1:{self.pbx.sip_port}", "-sf", str(SCENARIOS / "register.xml"), "-i", PHONE_IP,
             "-p", str(self.port), "-s", self.endpoint, "-au", self.endpoint, "-ap", f"change-me-{self.endpoint}",
             "-m", "1", "-nostdin", "-timeout", "10s", "-trace_err", "-error_file", str(log)],
            capture_output=True, timeout=20)
        if done.returncode != 0:
            raise AssertionError(f"phone {self.endpoint} could not register (sipp {done.returncode}): "
                                 f"{log.read_text(errors='replace')[-2000:] if log.exists() else done.stderr!r}")

    def start(self, ring_ms: int = 1000, talk_ms: int = 3000) -> None:
        """Register, then answer calls: ring ``ring_ms``, talk ``talk_ms`` (then hang up)."""
        self.stop()
        if self.registers:
            self.register()
        scenario = render("agent", self.workdir / f"agent-{self.endpoint}.xml", ring_ms=ring_ms, talk_ms=talk_ms)
        self.process = subprocess.Popen(
            [SIPP, f"127.0.0.1:{self.pbx.sip_port}", "-sf", str(scenario), "-i", self.ip, "-p", str(self.port),
             "-mi", self.ip, "-mp", str(self.media_port), "-aa", "-nostdin",
             "-trace_msg", "-message_file", str(self.workdir / f"agent-{self.endpoint}.msg")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def received(self) -> str:
        """Every SIP message this phone's SIPp has sent and received so far (its message log)."""
        path = self.workdir / f"agent-{self.endpoint}.msg"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


# ------------------------------------------------------------------------------------------- callers


_calls = itertools.count(1)


@dataclass
class Caller:
    """One SIPp call from the PSTN trunk; ``await done()`` for its exit status."""

    number: str
    process: asyncio.subprocess.Process
    log: Path

    async def done(self, timeout: float = 60) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout)

    def errors(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def place_call(pbx: Pbx, workdir: Path, number: str, *, name: str = "Caller", dialed: str = "8005551234",
                     hold_ms: int = 30000, keys: tuple[tuple[int, str], ...] = ()) -> Caller:
    """Call the 800 line from ``number`` (the From URI's user, as written: %-escapes stay) with display
    ``name`` (the quoted-string's content, byte for byte); after the answer press
    ``keys`` ((pause ms, digit) pairs, RFC 2833), then hang up after ``hold_ms`` unless the far end
    hangs up first."""
    presses = "".join(
        f'  <pause milliseconds="{pause}"/>\n'
        f'  <nop><action><exec play_pcap_audio="{DTMF_PCAPS / f"dtmf_2833_{digit}.pcap"}"/></action></nop>\n'
        for pause, digit in keys)
    tag = f"{next(_calls)}"
    scenario = render("caller", workdir / f"caller-{tag}.xml", number=number, hold_ms=hold_ms, dtmf=presses)
    log = workdir / f"caller-{tag}.err"
    process = await asyncio.create_subprocess_exec(
        SIPP, f"127.0.0.1:{pbx.sip_port}", "-sf", str(scenario), "-s", dialed, "-i", CALLER_IP,
        "-p", str(free_port(socket.SOCK_DGRAM)), "-mi", CALLER_IP, "-mp", str(free_port(socket.SOCK_DGRAM)),
        "-m", "1", "-nostdin", "-timeout", "120s", "-set", "cname", name, "-trace_err", "-error_file", str(log),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    return Caller(number, process, log)


# ------------------------------------------------------------------------------------------- audio


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64), w.getframerate()


def best_match(recording: np.ndarray, sound: np.ndarray) -> tuple[float, int]:
    """Where ``sound`` occurs in ``recording``: (normalized correlation 0..1, offset in samples)."""
    from scipy.signal import fftconvolve

    if len(recording) < len(sound):
        return 0.0, 0
    dots = fftconvolve(recording, sound[::-1], mode="valid")
    energy = np.sqrt(np.convolve(recording ** 2, np.ones(len(sound)), mode="valid")) * np.linalg.norm(sound)
    scores = np.where(energy > 0, dots / np.maximum(energy, 1e-9), 0.0)
    at = int(np.argmax(scores))
    return float(scores[at]), at


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0


# ------------------------------------------------------------------------------------------- cti


def cti_env(db_url: str, sounds: Path) -> dict[str, str]:
    return {**os.environ, "CTI_DATABASE_URL": db_url, "CTI_GREETING_SOUNDS_DIR": str(sounds),
            "CTI_LOG_LEVEL": "warning"}


def cti(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run the ``cti`` command as an admin would; fail the test with its output when it fails."""
    done = subprocess.run([CTI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"cti {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Console:
    """An agent logged into cti over HTTP with its websocket open; every message is kept."""

    username: str
    token: str
    ws: aiohttp.ClientWebSocketResponse
    http: aiohttp.ClientSession
    base: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    _reader: asyncio.Task | None = None

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))

    async def state(self, state: str) -> None:
        """The console's Ready / Pause / Leave buttons."""
        async with self.http.post(self.base + "/api/agent/state", json={"state": state},
                                  headers={"Authorization": f"Bearer {self.token}"}) as r:
            assert r.status == 200, await r.text()

    def pops(self, uniqueid: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == "screen_pop"
                and (uniqueid is None or m["call"].get("uniqueid") == uniqueid)]

    async def close(self) -> None:
        await self.ws.close()
        if self._reader:
            self._reader.cancel()


__all__ = ["AGENTS", "AGENT_PASSWORD", "Caller", "Console", "Phone", "ami_secret", "best_match", "cti", "cti_env",
           "pbx_edit", "place_call", "read_wav", "rms", "until"]
