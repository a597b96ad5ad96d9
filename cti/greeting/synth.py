"""Text to an Asterisk-playable WAV (8 kHz, mono, 16-bit signed PCM): espeak-ng piped into sox.

The text goes to espeak-ng on its standard input, never on its command line, so no name can
become an option. The result is written to a temporary file beside ``out_path`` and renamed into
place, so Asterisk never plays a half-written file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import wave
from pathlib import Path
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

SAMPLE_RATE = 8000
CHANNELS = 1
SAMPLE_WIDTH = 2
#: Longest text handed to the engine (greetings are short; this bounds the work of a bad input).
MAX_TEXT_CHARS = 500


class ToolConfig(Protocol):
    espeak: str
    sox: str


class SynthesisError(RuntimeError):
    """A greeting could not be synthesized (tool missing, failed, timed out, or produced no audio)."""


def _stderr_text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace").strip()[-500:]


async def _start(key: str, argv: list[str], **kwargs: object) -> asyncio.subprocess.Process:
    # Own process group: a timeout or shutdown kills the tool and anything it started (wrappers).
    # The spawn itself is shielded: cancelled half-way, asyncio would kill only the direct child and
    # could wait on pipes a grandchild keeps open; instead let it finish, then kill the whole group.
    spawn = asyncio.ensure_future(
        asyncio.create_subprocess_exec(*argv, start_new_session=True, **kwargs)  # type: ignore[arg-type]
    )
    try:
        return await asyncio.shield(spawn)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await _reap(await spawn)
        raise
    except FileNotFoundError:
        raise SynthesisError(
            f"{argv[0]!r} not found: install it (apt-get install espeak-ng sox) or set greeting.{key}"
        ) from None
    except OSError as exc:
        raise SynthesisError(f"cannot run {argv[0]!r}: {exc}") from None


async def _reap(proc: asyncio.subprocess.Process | None) -> None:
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    with contextlib.suppress(Exception):
        await proc.wait()


def check_wav(path: Path) -> int:
    """Number of frames of ``path`` if it is 8 kHz mono 16-bit PCM with audio; SynthesisError if not."""
    try:
        with wave.open(str(path), "rb") as w:
            params = (w.getframerate(), w.getnchannels(), w.getsampwidth())
            frames = w.getnframes()
    except (wave.Error, EOFError, OSError) as exc:
        raise SynthesisError(f"not a WAV file: {exc}") from None
    if params != (SAMPLE_RATE, CHANNELS, SAMPLE_WIDTH):
        raise SynthesisError(f"unexpected WAV format rate/channels/width {params}")
    if frames <= 0:
        raise SynthesisError("synthesized sound is empty")
    return frames


async def synthesize(text: str, voice: str, out_path: Path | str, cfg: ToolConfig, *, timeout: float = 30.0) -> Path:
    """Speak ``text`` with espeak-ng ``voice`` into ``out_path`` as 8 kHz mono 16-bit WAV (atomic)."""
    text = text.replace("\0", " ").strip()[:MAX_TEXT_CHARS]
    if not text:
        raise SynthesisError("nothing to say: empty text")
    if not voice or voice.startswith("-") or any(c.isspace() for c in voice):
        raise SynthesisError(f"bad voice name {voice!r}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".wav", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    espeak = sox = None
    try:
        read_end, write_end = os.pipe()
        try:
            espeak = await _start(
                "espeak",
                [cfg.espeak, "-v", voice, "-b", "1", "--stdin", "--stdout"],
                stdin=asyncio.subprocess.PIPE,
                stdout=write_end,
                stderr=asyncio.subprocess.PIPE,
            )
            sox = await _start(
                "sox",
                # input: WAV on stdin; output: rate/channels/width/encoding then the file (absolute path)
                [cfg.sox, "-q", "-t", "wav", "-", "-r", str(SAMPLE_RATE), "-c", str(CHANNELS),
                 "-b", str(SAMPLE_WIDTH * 8), "-e", "signed-integer", "-t", "wav", str(tmp.resolve())],
                stdin=read_end,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        finally:
            os.close(read_end)
            os.close(write_end)
        try:
            async with asyncio.timeout(timeout):
                (_, espeak_err), (_, sox_err) = await asyncio.gather(
                    espeak.communicate(text.encode("utf-8", "replace")), sox.communicate()
                )
        except TimeoutError:
            raise SynthesisError(f"synthesis timed out after {timeout:g}s") from None
        if espeak.returncode != 0:
            raise SynthesisError(f"{cfg.espeak} failed (exit {espeak.returncode}): {_stderr_text(espeak_err)}")
        if sox.returncode != 0:
            raise SynthesisError(f"{cfg.sox} failed (exit {sox.returncode}): {_stderr_text(sox_err)}")
        check_wav(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; Asterisk runs as another user
        os.replace(tmp, out)
        return out
    finally:
        await _reap(espeak)
        await _reap(sox)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
