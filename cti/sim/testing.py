"""Helpers for tests and benchmarks that drive the simulated PBX over real sockets.

- :func:`split_frames`: AMI bytes -> list of header lists (banner dropped), values kept as text.
- :class:`RawAmiClient`: a minimal AMI client on a real TCP connection that records every frame.
- :class:`ScriptedAgiServer`: a tiny FastAGI server answering ``incoming``/``ivr`` with fixed
  variables (for tests of the PBX side without the cti daemon).
"""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

Frame = list[tuple[str, str]]


def split_frames(data: bytes) -> list[Frame]:
    """Split an AMI byte stream into messages (``\\r\\n\\r\\n`` separated) of ``(name, value)`` headers."""
    if data.startswith(b"Asterisk Call Manager/"):
        data = data.split(b"\r\n", 1)[1]
    frames = []
    for block in data.split(b"\r\n\r\n"):
        if not block.strip(b"\r\n"):
            continue
        headers: Frame = []
        for line in block.split(b"\r\n"):
            key, sep, value = line.partition(b": ")
            if not sep and line.endswith(b":"):
                key, value = line[:-1], b""
            headers.append((key.decode("utf-8", "replace"), value.decode("utf-8", "replace")))
        frames.append(headers)
    return frames


def frame_name(frame: Frame) -> str:
    """``Event`` name, or ``Response:<kind>`` for a response."""
    d = dict(frame)
    if "Event" in d:
        return d["Event"]
    return "Response:" + d.get("Response", "?")


class RawAmiClient:
    """Connects, logs in, sends actions and collects every byte the server sends."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.data = b""
        self.banner = b""
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._pump: Optional[asyncio.Task[None]] = None
        self._changed = asyncio.Event()
        self.closed = asyncio.Event()
        self._n = 0

    async def connect(self) -> "RawAmiClient":
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self.banner = await self._reader.readline()
        self._pump = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        assert self._reader is not None
        while True:
            chunk = await self._reader.read(65536)
            if not chunk:
                self.closed.set()
                self._changed.set()
                return
            self.data += chunk
            self._changed.set()

    def send(self, action: str, **headers: str) -> str:
        """Send one action; returns its ActionID (``sim-<n>``) unless ActionID='' is given."""
        self._n += 1
        action_id = headers.pop("ActionID", f"sim-{self._n}")
        lines = [f"Action: {action}"] + ([f"ActionID: {action_id}"] if action_id else [])
        lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
        assert self._writer is not None
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return action_id

    def send_raw(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)

    def frames(self) -> list[Frame]:
        return split_frames(self.data)

    async def wait_for(self, predicate: Callable[[list[Frame]], bool], timeout: float = 10.0) -> list[Frame]:
        """Wait until ``predicate(frames)`` holds (or the connection closes)."""
        async def loop() -> list[Frame]:
            while True:
                frames = self.frames()
                if predicate(frames) or self.closed.is_set():
                    return frames
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(loop(), timeout)

    async def response(self, action_id: str, timeout: float = 10.0) -> Frame:
        """The response frame with this ActionID (not an event carrying it)."""
        def find(frames: list[Frame]) -> Optional[Frame]:
            for f in frames:
                d = dict(f)
                if "Response" in d and "Event" not in d and d.get("ActionID") == action_id:
                    return f
            return None
        frames = await self.wait_for(lambda fs: find(fs) is not None, timeout)
        found = find(frames)
        if found is None:
            raise ConnectionError(f"no response to {action_id}")
        return found

    async def event(self, name: str, timeout: float = 10.0, **match: str) -> Frame:
        def find(frames: list[Frame]) -> Optional[Frame]:
            for f in frames:
                d = dict(f)
                if d.get("Event") == name and all(d.get(k) == v for k, v in match.items()):
                    return f
            return None
        frames = await self.wait_for(lambda fs: find(fs) is not None, timeout)
        found = find(frames)
        if found is None:
            raise ConnectionError(f"no {name} event")
        return found

    async def login(self, username: str = "cti", secret: str = "cti-secret", events: str = "on") -> Frame:
        return await self.response(self.send("Login", Username=username, Secret=secret, Events=events))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)


class ScriptedAgiServer:
    """A FastAGI server for tests: reads the environment, sends ``SET VARIABLE`` for each entry of
    ``route(env)`` (a dict), and closes. ``envs`` records every environment received."""

    def __init__(self, route: Callable[[dict[str, str]], dict[str, str]]) -> None:
        self.route = route
        self.envs: list[dict[str, str]] = []
        self.raw: list[bytes] = []
        self.replies: list[bytes] = []
        self.port = 0
        self._server: Optional[asyncio.base_events.Server] = None

    async def start(self) -> "ScriptedAgiServer":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        env: dict[str, str] = {}
        raw = b""
        try:
            while True:
                line = await reader.readline()
                raw += line
                if line in (b"\n", b""):
                    break
                key, _, value = line.decode("utf-8", "replace").rstrip("\n").partition(": ")
                env.setdefault(key, value)
            self.envs.append(env)
            self.raw.append(raw)
            for name, value in self.route(env).items():
                writer.write(f'SET VARIABLE {name} "{value}"\n'.encode())
                await writer.drain()
                self.replies.append(await reader.readline())
        except ConnectionError:
            pass  # the caller hung up
        finally:
            writer.close()
