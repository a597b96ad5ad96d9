"""Drive :mod:`cti.greeting.linker`: hard links made in bulk by a child process while the event loop works on.

:meth:`BulkLinker.submit` sends a chunk of (source, target) pairs and returns a future of that chunk's
failures (index in the chunk → reason); chunks finish in submission order. When the child cannot
start, or dies, the chunks it has not confirmed are linked in a worker thread instead (linking is
idempotent, so redoing part of a chunk is harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import structlog

import cti
from cti.greeting.linker import Tally, link_lines

log = structlog.get_logger(__name__)

#: A chunk's failures: index of the pair in the chunk → reason.
Failures = dict[int, str]

_PACKAGE_ROOT = str(Path(cti.__file__).resolve().parent.parent)


@dataclass
class _Chunk:
    first_line: int  # the child's number of the chunk's first line
    pairs: list[tuple[str, str]]  # the pairs sent
    index: list[int]  # their index in the submitted chunk
    future: asyncio.Future[Failures]
    rejected: Failures  # pairs not sent (unusable), by index in the submitted chunk
    failures: Failures  # all failures so far, by index in the submitted chunk


class BulkLinker:
    """Links (source, target) pairs relative to ``directory``; use ``async with`` or start()/close()."""

    def __init__(self, directory: Path | str, *, python: str | None = None) -> None:
        self.dir = Path(directory)
        self._python = python or sys.executable
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: deque[_Chunk] = deque()  # sent to the child, not confirmed yet
        self._unfinished: set[asyncio.Future[Failures]] = set()
        self._next_line = 1
        self._executor: ThreadPoolExecutor | None = None
        self._fell_back = False
        self._dir_fd: int | None = None
        #: Pairs done (linked now or already there) and failed, over the whole run.
        self.done = 0
        self.failed = 0

    @property
    def in_child(self) -> bool:
        """True while the links are made by the child process (False: thread fallback)."""
        return self._proc is not None and not self._fell_back

    async def __aenter__(self) -> BulkLinker:
        await self.start()
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            await self.close()
        else:
            await self.abort()

    async def start(self) -> None:
        """Start the child; on failure fall back to a thread (logged, not raised)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                # -P: the current directory is not put on sys.path (the cti of PYTHONPATH is the one run)
                self._python, "-P", "-m", "cti.greeting.linker", "--dir", str(self.dir),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
            )
        except OSError as exc:
            self._fall_back(f"cannot start the linker process: {exc}")
            return
        self._reader = asyncio.create_task(self._read(), name="greeting-linker-reader")

    def submit(self, pairs: list[tuple[str, str]]) -> asyncio.Future[Failures]:
        """Queue a chunk; the future gives the failed pairs once every pair of the chunk is done."""
        failures: Failures = {}
        body = "".join(f"{source}\t{target}\n" for source, target in pairs)
        if body.count("\t") == len(pairs) and body.count("\n") == len(pairs) and "\r" not in body:
            good = list(range(len(pairs)))  # the usual case: no pair holds a separator (empty paths the child refuses)
        else:
            good = []
            for i, (source, target) in enumerate(pairs):
                if not source or not target or any(ch in source or ch in target for ch in "\t\r\n"):
                    failures[i] = "bad pair"
                else:
                    good.append(i)
            body = "".join(f"{pairs[i][0]}\t{pairs[i][1]}\n" for i in good)
        sent = pairs if len(good) == len(pairs) else [pairs[i] for i in good]
        chunk = _Chunk(self._next_line, sent, good, asyncio.get_running_loop().create_future(), failures, dict(failures))
        self._unfinished.add(chunk.future)
        chunk.future.add_done_callback(self._unfinished.discard)
        if not self.in_child:
            self._run_in_thread(chunk)
            return chunk.future
        self._next_line += len(chunk.pairs) + 1  # the pairs, then the flush marker
        self._pending.append(chunk)
        data = body + "\n"
        try:
            assert self._proc is not None and self._proc.stdin is not None
            if self._proc.stdin.is_closing():
                return chunk.future  # the child is gone: its reader redoes the pending chunks
            self._proc.stdin.write(data.encode("utf-8", "surrogateescape"))
        except (OSError, RuntimeError) as exc:  # the child is gone: its reader redoes the pending chunks
            log.warning("greeting_linker_write_failed", error=str(exc))
        return chunk.future

    async def drain(self) -> None:
        """Wait until the child has taken what was written (back-pressure for big imports)."""
        if self.in_child and self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                await self._proc.stdin.drain()

    async def close(self) -> None:
        """Finish every submitted chunk, then stop the child or the thread."""
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._proc.stdin.close()
                await self._proc.stdin.wait_closed()
        if self._reader is not None:
            await self._reader
        if self._proc is not None:
            await self._proc.wait()
        if self._unfinished:
            await asyncio.gather(*list(self._unfinished), return_exceptions=True)
        self._shutdown_executor()

    async def abort(self) -> None:
        """Stop at once (cancellation, error): kill the child; unfinished chunks are cancelled."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            with contextlib.suppress(Exception):
                await self._proc.wait()
        self._pending.clear()
        for future in list(self._unfinished):
            future.cancel()
        self._shutdown_executor()

    # --- inside -----------------------------------------------------------------------------

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        ended = False
        try:
            async for raw in self._proc.stdout:
                word, _, rest = raw.decode("utf-8", "replace").rstrip("\n").partition(" ")
                if word == "fail" and self._pending:
                    number, _, reason = rest.partition(" ")
                    head = self._pending[0]
                    head.failures[head.index[int(number) - head.first_line]] = reason
                elif word == "done" and self._pending:
                    head = self._pending.popleft()
                    self.done += len(head.pairs) - (len(head.failures) - len(head.rejected))
                    self.failed += len(head.failures)
                    if not head.future.done():
                        head.future.set_result(head.failures)
                elif word == "end":
                    ended = True
        except (OSError, ValueError, IndexError) as exc:
            log.warning("greeting_linker_read_failed", error=str(exc))
        if self._pending or not ended:
            err = b""
            if self._proc.stderr is not None:
                with contextlib.suppress(Exception):
                    err = await self._proc.stderr.read(2000)
            if self._pending or (self._proc.stdin is not None and not self._proc.stdin.is_closing()):
                self._fall_back(
                    f"the linker process stopped: {err.decode('utf-8', 'replace').strip()[-300:] or 'no message'}"
                )
            while self._pending:
                chunk = self._pending.popleft()
                chunk.failures = dict(chunk.rejected)
                self._run_in_thread(chunk)

    def _fall_back(self, reason: str) -> None:
        if not self._fell_back:
            self._fell_back = True
            log.warning("greeting_linker_fallback", reason=reason)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="greeting-linker")
            self._dir_fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)

    def _run_in_thread(self, chunk: _Chunk) -> None:
        assert self._executor is not None
        lines = [f"{source}\t{target}".encode("utf-8", "surrogateescape") for source, target in chunk.pairs]
        work = asyncio.get_running_loop().run_in_executor(self._executor, link_lines, lines, self._dir_fd, 0)

        def finish(f: asyncio.Future[Tally]) -> None:
            if chunk.future.done():
                return
            if f.cancelled():
                chunk.future.cancel()
            elif (exc := f.exception()) is not None:
                chunk.future.set_exception(exc)
            else:
                tally = f.result()
                chunk.failures.update({chunk.index[n]: why for n, why in tally.failures})
                self.failed += len(chunk.failures)
                self.done += tally.linked + tally.existing
                chunk.future.set_result(chunk.failures)

        work.add_done_callback(finish)

    def _shutdown_executor(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
