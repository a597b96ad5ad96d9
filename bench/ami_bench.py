"""AMI ingest benchmark: a busy call center's event stream through cti's parser + state machines,
against panoramisk's bare parser on the same bytes, in the same run.

The stream is ``ami-busy.in.raw`` (six overlapping calls in three queues, recorded from a
real Asterisk 22.10.1) repeated until it holds at least ``--events`` events, each copy's
uniqueids/linkedids shifted so that every call stays distinct. Both contenders get the
same bytes in the same 64 KiB reads (what ``AmiSession`` reads from the socket).

* ``cti pipeline``: AmiParser.feed -> ``AmiService._on_event`` (normalize -> LiveState.apply
  -> bus publish to one subscriber -> call records submitted to the recorder's queue, a log
  line per ended call, filtered at level warning here): everything the event path does
  except the socket and the database write (which is batched off the path).
* ``cti parser, eager``: AmiParser.feed and every message's headers split (what a
  consumer that looks at every header would pay); for reference.
* ``panoramisk parser``: ``AMIProtocol.data_received`` (its framing + ``Message.from_line``
  + dispatch to a no-op), i.e. panoramisk's bare parser.

Rates are events per CPU second of this process (``time.process_time``): per core. The
median of ``--runs`` runs is reported, with the ratio pipeline / panoramisk.

    /work/venv/bin/python bench/ami_bench.py [--events 100000] [--runs 5] [--captures DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

from cti.ami.protocol import AmiParser
from cti.ami.service import AmiService
from cti.bus import InMemoryBus
from cti.calls.recorder import CallRecorder
from cti.config import AmiConfig
from cti.logs import configure_logging

READ = 65536
_UID = re.compile(rb"\b(17954\d{5})\.(\d+)\b")


def build_stream(captures: Path, min_events: int, classes: frozenset[str] | None = None) -> tuple[bytes, int]:
    """ami-busy repeated, uniqueids shifted per copy; ``classes``: keep only events of these
    classes (what an AMI session with that ``Events:`` mask receives; responses are kept)."""
    raw = (captures / "ami-busy.in.raw").read_bytes()
    banner, _, body = raw.partition(b"\r\n")
    if classes is not None:
        kept = []
        for frame in body.split(b"\r\n\r\n"):
            m = re.search(rb"\r\nPrivilege: ([a-z]+)", frame)
            if m is None or m.group(1).decode() in classes:
                kept.append(frame)
        body = b"\r\n\r\n".join(kept)
    per_copy = body.count(b"\r\n\r\n")
    copies = -(-min_events // per_copy)
    parts = [banner + b"\r\n"]
    for k in range(copies):
        shift = k * 100_000  # shifts the seconds part: 1795432659.21 -> 1795532659.21 ...
        parts.append(_UID.sub(lambda m: b"%d.%s" % (int(m.group(1)) + shift, m.group(2)), body))
    data = b"".join(parts)
    return data, per_copy * copies


def chunks(data: bytes) -> list[bytes]:
    return [data[i: i + READ] for i in range(0, len(data), READ)]


def run_cti_pipeline(reads: list[bytes]) -> tuple[int, dict[str, int]]:
    """The daemon's own event path: ``AmiService._on_event`` (what the link's reader calls)."""
    parser = AmiParser()
    bus = InMemoryBus()
    sub = bus.subscribe("call.", "agent.", "queue.", maxsize=10_000)
    clock = [1795432659.0]
    svc = AmiService(AmiConfig(server="bench"), bus, None, clock=lambda: clock[0])
    svc.recorder = CallRecorder(None, flush_interval=1.0)  # type: ignore[arg-type]  # submit only: no database
    on_event = svc._on_event
    n = 0
    for data in reads:
        clock[0] += 0.01
        now = clock[0]
        for msg in parser.feed(data):
            n += 1
            on_event(msg, now)
    state = svc.state
    return n, {"calls_ended": state.calls.ended_count, "records": svc.recorder.pending, "bus": bus.published,
               "dropped": sub.dropped, "open_calls": len(state.calls.calls)}


def run_cti_eager(reads: list[bytes]) -> tuple[int, dict[str, int]]:
    parser = AmiParser()
    n = 0
    for data in reads:
        for msg in parser.feed(data):
            msg.fields  # noqa: B018 - force the header split
            n += 1
    return n, {}


def run_panoramisk(reads: list[bytes]) -> tuple[int, dict[str, int]]:
    from panoramisk.ami_protocol import AMIProtocol

    class _Factory:
        save_stream = None
        forgetable_actions = ("ping", "login")
        awaiting_actions: list[object] = []
        n = 0

        def dispatch(self, message: object) -> None:
            self.n += 1

    proto = AMIProtocol()
    proto.connection_made(None)
    factory = _Factory()
    proto.factory = factory
    proto.encoding = "utf8"
    import logging

    proto.log = logging.getLogger("panoramisk.bench")
    proto.log.disabled = True
    for data in reads:
        proto.data_received(data)
    return factory.n, {}


def measure(fn: Callable[[list[bytes]], tuple[int, dict[str, int]]], reads: list[bytes], runs: int) -> tuple[float, int, dict[str, int]]:
    rates = []
    n, info = 0, {}
    for _ in range(runs):
        gc.collect()
        t0 = time.process_time()
        n, info = fn(reads)
        dt = time.process_time() - t0
        rates.append(n / dt)
    return statistics.median(rates), n, info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_caps = Path(os.environ.get("CTI_CAPTURES", Path(__file__).resolve().parents[1] / "tests" / "captures"))
    ap.add_argument("--captures", type=Path, default=default_caps)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    configure_logging("warning", "json")

    ok = True
    for label, classes in (("read = all (the captures' user)", None),
                           ("Events: system,call,agent (what cti's link asks for)", frozenset({"system", "call", "agent"}))):
        data, frames = build_stream(args.captures, args.events, classes)
        reads = chunks(data)
        print(f"\nstream: ami-busy, {label}: {frames} frames, {len(data) / 1e6:.1f} MB, {len(reads)} reads of "
              f"{READ} B; median of {args.runs} runs; CPU time of one process")
        pipe_rate, n_pipe, info = measure(run_cti_pipeline, reads, args.runs)
        eager_rate, n_eager, _ = measure(run_cti_eager, reads, args.runs)
        pano_rate, n_pano, _ = measure(run_panoramisk, reads, args.runs)
        print(f"  cti pipeline (parse+normalize+state+bus+records): {pipe_rate:10,.0f} events/s  ({n_pipe} messages; {info})")
        print(f"  cti parser, eager headers:                        {eager_rate:10,.0f} events/s")
        print(f"  panoramisk bare parser (AMIProtocol.data_received): {pano_rate:8,.0f} events/s  ({n_pano} events dispatched)")
        ratio = pipe_rate / pano_rate
        print(f"  ratio cti pipeline / panoramisk parser: {ratio:.2f}x   (targets: >= 30,000 events/s and >= 0.5x)")
        ok = ok and pipe_rate >= 30_000 and ratio >= 0.5
    print("\nPASS" if ok else "\nBELOW TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
