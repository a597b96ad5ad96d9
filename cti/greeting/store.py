"""The sounds directory: a content-addressed cache of syntheses and the named files Asterisk plays.

``<sounds_dir>/.cache/<content_key>.wav`` holds one synthesis per distinct (voice, text);
``<sounds_dir>/<name>.wav`` is a hard link to it (a copy where links are impossible), so a million
customers sharing a few thousand surname+title combinations cost a few thousand syntheses.
Every file appears atomically (temporary name, then ``os.replace``).
"""

from __future__ import annotations

import asyncio
import errno
import filecmp
import os
import shutil
import uuid
from pathlib import Path

import structlog

from cti.greeting.naming import SOUND_NAME_RE, content_key
from cti.greeting.synth import ToolConfig, synthesize

log = structlog.get_logger(__name__)

class SoundStore:
    """Named sounds in ``sounds_dir`` backed by the content cache; at most ``max_processes`` syntheses at once."""

    def __init__(self, sounds_dir: Path | str, tools: ToolConfig, *, max_processes: int = 2, timeout: float = 30.0) -> None:
        self.dir = Path(sounds_dir)
        self.cache_dir = self.dir / ".cache"
        self._tools = tools
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_processes)
        self._inflight: dict[str, asyncio.Future[Path]] = {}
        #: How many syntheses actually ran (cache misses); for metrics and tests.
        self.syntheses = 0

    def path(self, name: str) -> Path:
        """The file of sound ``name``; ValueError for anything that is not a generated sound name."""
        if not SOUND_NAME_RE.fullmatch(name or ""):
            raise ValueError(f"not a sound name: {name!r}")
        return self.dir / f"{name}.wav"

    def cache_path(self, text: str, voice: str) -> Path:
        return self.cache_dir / f"{content_key(text, voice)}.wav"

    async def cached(self, text: str, voice: str) -> Path:
        """The cache file for (text, voice), synthesizing it once if absent (concurrent askers share one run)."""
        target = self.cache_path(text, voice)
        if target.exists():
            return target
        key = target.stem
        running = self._inflight.get(key)
        if running is not None:
            try:
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if running.cancelled() and task is not None and not task.cancelling():
                    return await self.cached(text, voice)  # the task that ran it was cancelled, not us
                raise
        fut: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            async with self._slots:
                if not target.exists():
                    self.syntheses += 1
                    await synthesize(text, voice, target, self._tools, timeout=self._timeout)
            fut.set_result(target)
            return target
        except Exception as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        except BaseException:
            fut.cancel()
            raise
        finally:
            del self._inflight[key]

    def is_current(self, name: str, text: str, voice: str) -> bool:
        """True when ``name``'s file already holds the sound of (text, voice)."""
        target, source = self.path(name), self.cache_path(text, voice)
        try:
            return os.path.samefile(target, source) or filecmp.cmp(target, source, shallow=False)
        except OSError:
            return False

    async def publish(self, name: str, text: str, voice: str, *, replace: bool = False) -> Path:
        """Make ``<name>.wav`` say ``text`` in ``voice``.

        Without ``replace`` an existing file is trusted (customer sound names embed the content hash);
        with it, a file whose content differs is replaced (fixed names such as ``greet-generic-zh``).
        """
        target = self.path(name)
        if target.exists() and (not replace or self.is_current(name, text, voice)):
            return target
        source = await self.cached(text, voice)
        self._link(source, target)
        return target

    def _link(self, source: Path, target: Path) -> None:
        tmp = target.with_name(f".tmp-{uuid.uuid4().hex}-{target.name}")
        try:
            try:
                os.link(source, tmp)
            except OSError as exc:
                shutil.copyfile(source, tmp)
                os.chmod(tmp, 0o644)
                if exc.errno == errno.EMLINK:
                    self._repoint_cache(source, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _repoint_cache(source: Path, fresh_copy: Path) -> None:
        """The cache inode reached the file system's link limit: the fresh copy becomes the cache entry."""
        tmp = source.with_name(f".tmp-{uuid.uuid4().hex}.wav")
        try:
            os.link(fresh_copy, tmp)
            os.replace(tmp, source)
            log.info("greeting_cache_repointed", key=source.stem)
        except OSError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
