"""``cti demo`` as a newcomer runs it: a real process, its printed URL and logins, a pop over the websocket
for the printed agent without any other step, a clean stop on Ctrl-C (SIGINT), a second start reusing the data."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp

from cti.demo.data import AGENT_PASSWORD, SUPERVISOR_PASSWORD

CTI = [sys.executable, "-c", "import sys; from cti.cli import main; sys.exit(main())"]


async def _start(data_dir: Path) -> tuple[asyncio.subprocess.Process, list[str]]:
    proc = await asyncio.create_subprocess_exec(
        *CTI, "demo", "--http-port", "0", "--data-dir", str(data_dir), "--speed", "20", "--ring-seconds", "0.5",
        "--talk-seconds", "1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    assert proc.stdout is not None
    while not any(line.startswith("Ctrl-C stops") for line in lines):
        raw = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not raw:
            err = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"cti demo ended early: {lines} {err.decode()[-2000:]}")
        lines.append(raw.decode().rstrip("\n"))
    return proc, lines


async def _stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_cti_demo_prints_its_console_and_a_printed_agent_sees_real_pops(tmp_path: Path):
    data = tmp_path / "demo"
    proc, lines = await _start(data)
    try:
        text = "\n".join(lines)
        assert re.search(r"demo database: .*: 40 customers, 5 open complaints, \d+ accounts", text)
        url = re.search(r"agent console:\s+(http://\S+)", text).group(1)
        assert re.search(r"^\s+mobile1\s+.*PJSIP/1001\s+queue mobile$", text, re.M)
        assert f"supervisor / {SUPERVISOR_PASSWORD}" in text
        async with aiohttp.ClientSession() as http:
            async with http.post(url + "api/login", json={"username": "mobile1", "password": AGENT_PASSWORD}) as r:
                assert r.status == 200, await r.text()
                token = (await r.json())["token"]
            async with http.ws_connect(url + "ws", headers={"Authorization": f"Bearer {token}"}) as ws:
                async def first_pop() -> dict:
                    while True:
                        m = await ws.receive_json()
                        if m["type"] == "screen_pop":
                            return m
                pop = await asyncio.wait_for(first_pop(), 60)  # the shift is logged in: no click needed
                assert pop["call"]["interface"] == "PJSIP/1001" and pop["call"]["queue"] == "mobile"
    finally:
        if proc.returncode is None:
            out = await _stop(proc)
    assert re.search(r"cti demo stopped after \d+ simulated calls", out)
    assert (data / "cti.db").is_file() and (data / "callers.csv").read_text().startswith("number,name")

    proc, lines = await _start(data)  # again: the data is reused, not seeded twice
    out = await _stop(proc)
    assert any("(existing, 40 customers" in line for line in lines)


def test_demo_world_has_every_kind_of_caller_and_enough_agents_for_the_volume():
    from cti.customers.records import customer_from_fields
    from cti.demo.data import demo_customers, roster

    people = demo_customers()
    records = [customer_from_fields(p.fields, "CN") for p in people]  # every one valid as an import row
    assert len({r.phones[0].e164 for r in records}) == len(people)
    assert {pr.product_line for r in records for pr in r.products} == {"appliances", "mobile", "office"}
    assert {r.language for r in records} == {"zh", "en"} and any(r.vip for r in records)
    assert sum(1 for p in people if p.complaint) >= 3
    small, big = roster(200), roster(5000)
    for team in (small, big):
        assert sorted(a.username for a in team.agents if a.featured) == ["appliances1", "complaints1", "mobile1"]
        assert len({a.interface for a in team.agents}) == len(team.agents)
    assert all(big.sizing[q] > small.sizing[q] for q in ("mobile", "appliances"))


async def test_running_the_demo_twice_keeps_both_runs_calls(tmp_path: Path):
    """The second run's simulated PBX does not reuse the first run's uniqueids, and no call row of the
    first run is overwritten by a call of the second."""
    import sqlite3

    data = tmp_path / "demo"

    def rows() -> dict[int, tuple]:
        with sqlite3.connect(data / "cti.db") as db:
            return {r[0]: r[1:] for r in db.execute("SELECT id, uniqueid, started_at FROM calls")}

    async def run_until_calls(at_least: int) -> None:
        proc, _ = await _start(data)
        try:
            for _ in range(600):
                if (data / "cti.db").exists() and len(rows()) >= at_least:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"only {len(rows())} calls recorded")
        finally:
            await _stop(proc)

    await run_until_calls(3)
    first = rows()
    await run_until_calls(len(first) + 3)
    second = rows()
    assert all(second.get(i) == r for i, r in first.items()), "a call of the first run was overwritten"
    assert len({u for u, _ in second.values()}) == len(second)
