"""Event-bus latency across nodes: a ``call.ringing``-sized message published on node A, received
by a subscriber on node B (two RedisBus instances on the local Redis), against the in-process
bus in the same run (the baseline: what a pop costs when publisher and websocket share a node).

    python bench/bus_bench.py                   # 5,000 messages at 1,000/s, 3 alternating rounds
    python bench/bus_bench.py --messages 20000 --rate 5000

Printed per bus: p50/p99/max publish->receive latency (ms) and the publisher's CPU per message
(process_time; this process hosts both nodes, so it is the sum of both sides).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cti.bus import InMemoryBus  # noqa: E402
from cti.bus.redis import RedisBus  # noqa: E402

PAYLOAD = {"server": "beijing", "uniqueid": "1780000000.123", "linkedid": "1780000000.123",
           "caller_number": "13800138000", "caller_name": "Wang Wei", "caller_e164": "+8613800138000",
           "customer_id": 4711, "queue": "mobile", "interface": "PJSIP/1001", "member_name": "Li Na",
           "priority": 5, "route": "product", "lang": "zh", "dialed": "4008001234"}


async def run(pub, sub_bus, n: int, rate: float) -> tuple[list[float], float]:
    sub = sub_bus.subscribe("call.", maxsize=n + 10)
    lat: list[float] = []

    async def receive() -> None:
        for _ in range(n):
            m = await sub.get()
            lat.append(time.perf_counter() - m.payload["t"])

    rx = asyncio.create_task(receive())
    cpu0 = time.process_time()
    interval = 1.0 / rate
    start = time.perf_counter()
    for i in range(n):
        target = start + i * interval
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pub.publish("call.ringing", {**PAYLOAD, "t": time.perf_counter()})
    await asyncio.wait_for(rx, 60)
    cpu = time.process_time() - cpu0
    sub.close()
    return lat, cpu / n


def show(name: str, lat: list[float], cpu: float) -> None:
    q = statistics.quantiles(lat, n=100)
    print(f"{name:>12}: p50 {q[49] * 1000:7.3f} ms  p99 {q[98] * 1000:7.3f} ms  max {max(lat) * 1000:7.2f} ms"
          f"  CPU {cpu * 1e6:6.1f} us/msg")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    stream = f"cti:bench:{uuid.uuid4().hex[:8]}"
    node_a = RedisBus(a.url, node_id="bench-a", stream=stream, block_ms=1000)
    node_b = RedisBus(a.url, node_id="bench-b", stream=stream, block_ms=1000)
    await node_a.start()
    await node_b.start()
    local = InMemoryBus()
    try:
        for r in range(a.rounds):
            print(f"round {r + 1}: {a.messages} messages at {a.rate:.0f}/s")
            lat, cpu = await run(local, local, a.messages, a.rate)
            show("in-process", lat, cpu)
            base = statistics.median(lat)
            lat, cpu = await run(node_a, node_b, a.messages, a.rate)
            show("cross-node", lat, cpu)
            print(f"{'':>12}  cross-node / in-process p50: {statistics.median(lat) / base:.0f}x")
    finally:
        await node_a.close()
        await node_b.close()
        import redis.asyncio as aioredis

        r = aioredis.from_url(a.url)
        await r.delete(stream)
        await r.aclose()


if __name__ == "__main__":
    asyncio.run(main())
