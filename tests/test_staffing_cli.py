"""``cti staffing`` and ``cti reports`` through click's CliRunner (real database for the history paths)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from cti.stats.cli import reports, staffing


class _Obj:
    """What ``cti``'s main group puts in ``ctx.obj``: lazily loaded settings."""

    def __init__(self, env: dict[str, str]) -> None:
        from cti.config import load_settings

        self.settings = load_settings(None, env=env)


def invoke(group, args: list[str], env: dict[str, str] | None = None):
    result = CliRunner().invoke(group, args, obj=_Obj(env or {}), catch_exceptions=False)
    return result


def test_erlang_command_prints_both_models() -> None:
    r = invoke(staffing, ["erlang", "--calls", "100", "--interval-min", "30", "--aht-s", "180", "--sl-target", "80", "--sl-seconds", "20", "--shrinkage", "0.3"])
    assert r.exit_code == 0, r.output
    assert "10.00 Erlangs" in r.output
    assert "[erlang_c] 14 agents on the phones (20 rostered with 30.0% shrinkage)" in r.output
    assert "service level 88.8% within 20 s" in r.output
    assert re.search(r"\[erlang_a\] \d+ agents on the phones .* for a 80.0% answer rate with 120 s mean patience", r.output)


def test_erlang_command_json() -> None:
    r = invoke(staffing, ["erlang", "--calls", "117", "--aht-s", "600", "--patience-s", "90", "--json"])
    data = json.loads(r.output)
    assert data["erlang_c"]["agents"] == 46 and data["erlang_c"]["model"] == "erlang_c"
    assert data["erlang_a"]["agents"] == 33 and data["erlang_a"]["model"] == "erlang_a"
    assert data["erlang_a"]["patience_s"] == 90


def test_erlang_command_rejects_bad_shares() -> None:
    r = CliRunner().invoke(staffing, ["erlang", "--calls", "10", "--aht-s", "60", "--sl-target", "150"], obj=_Obj({}))
    assert r.exit_code == 2 and "percentage below 100" in r.output


def test_plan_for_the_seed_day(tmp_path) -> None:
    svg = tmp_path / "plan.svg"
    r = invoke(staffing, ["plan", "--svg", str(svg)])
    assert r.exit_code == 0, r.output
    m = re.search(r"Peak seats planned: (\d+) \(erlang_a asks (\d+), erlang_c asks (\d+)\)", r.output)
    assert m and abs(int(m[1]) - int(m[2])) <= 1 and int(m[3]) > int(m[2])
    paid = re.search(r"Paid hours: ([\d.]+) planned vs ([\d.]+) flat", r.output)
    assert paid and float(paid[1]) < float(paid[2])
    assert "[erlang_a] day answer rate with this plan:" in r.output
    assert svg.read_text().startswith("<svg") and "Erlang A" in svg.read_text()


def test_plan_csv_to_stdout() -> None:
    r = invoke(staffing, ["plan", "--model", "erlang_c", "--shrinkage", "0.2", "--csv", "-"])
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert len(rows) == 25 and rows[0]["start"] == "08:00"
    assert all(int(x["planned"]) >= int(x["erlang_c_rostered"]) for x in rows)
    assert all(int(x["erlang_c_rostered"]) >= int(x["erlang_c_agents"]) for x in rows)


def test_plan_from_a_forecast_file(tmp_path) -> None:
    f = tmp_path / "fc.csv"
    f.write_text("start,calls\n08:00,40\n08:30,40\n09:00,120\n09:30,120\n" + "".join(f"{h:02d}:{m:02d},40\n" for h in range(10, 14) for m in (0, 30)))
    r = invoke(staffing, ["plan", "--forecast-file", str(f), "--aht-s", "300", "--shift-lengths", "6"])
    assert r.exit_code == 0, r.output
    assert "6 h  08:00-14:00" in r.output


def _seed_history(db_url: str) -> date:
    """Four previous Mondays of calls in the database; returns the Monday to plan."""
    from cti.db.engine import create_engine
    from cti.db.schema import init_schema
    from cti.db.tables import calls

    target = date(2026, 11, 30)

    async def go() -> None:
        eng = create_engine(db_url)
        await init_schema(eng)
        rows = []
        for k in range(1, 5):
            d = target - timedelta(days=7 * k)
            for h in range(8, 20):
                n = 60 if h in (9, 14) else 30
                for i in range(n):
                    t0 = datetime(d.year, d.month, d.day, h, (i * 60 // n) % 60, i % 60, tzinfo=timezone.utc)
                    ok = i % 5 != 0
                    rows.append({
                        "uniqueid": f"{k}.{h}.{i}", "queue": "appliances", "started_at": t0, "queued_at": t0,
                        "answered_at": t0 + timedelta(seconds=15) if ok else None, "ended_at": t0 + timedelta(seconds=315),
                        "wait_s": 15.0 if ok else 60.0, "talk_s": 300.0 if ok else None,
                        "outcome": "answered" if ok else "abandoned",
                    })
        async with eng.begin() as conn:
            await conn.execute(calls.insert(), rows)
        await eng.dispose()

    asyncio.run(go())
    return target


def test_plan_from_history_and_reports(db_url: str, tmp_path) -> None:
    target = _seed_history(db_url)
    env = {"CTI_DATABASE_URL": db_url, "CTI_ROUTING_TIMEZONE": "UTC"}
    r = invoke(staffing, ["plan", "--from-history", "--date", target.isoformat(), "--weeks", "4", "--open", "08:00", "--close", "20:00", "--shift-lengths", "12,6", "--csv", "-"], env)
    assert r.exit_code == 0, r.output
    rows = {x["start"]: x for x in csv.DictReader(io.StringIO(r.output))}
    assert float(rows["09:00"]["calls"]) == 30 and float(rows["10:00"]["calls"]) == 15
    assert float(rows["09:00"]["traffic_erlangs"]) == pytest.approx(30 * 300 / 1800)  # AHT from history: 300 s

    r = invoke(staffing, ["plan", "--from-history", "--date", "2027-06-01"], env)
    assert r.exit_code == 1 and "no offered calls" in r.output

    monday = (target - timedelta(days=7)).isoformat()
    r = invoke(reports, ["intervals", "--from", monday, "--interval-min", "60", "--svg", str(tmp_path / "t.svg")], env)
    lines = list(csv.DictReader(io.StringIO(r.output)))
    assert len(lines) == 13  # 08:00-19:00, plus 20:00 where the last conversations end (busy time, no offer)
    assert lines[-1]["offered"] == "0" and float(lines[-1]["busy_s"]) > 0
    nine = next(x for x in lines if x["start"].startswith(f"{monday}T09:00"))
    assert (nine["offered"], nine["answered"], nine["abandoned"], nine["answer_rate"], nine["service_level"]) == ("60", "48", "12", "0.8", "0.8")
    assert (tmp_path / "t.svg").read_text().count("<rect") > 24

    r = invoke(reports, ["daily", "--from", (target - timedelta(days=28)).isoformat(), "--to", monday], env)
    days = list(csv.DictReader(io.StringIO(r.output)))
    assert [d["offered"] for d in days] == ["420"] * 4

    r = invoke(reports, ["queues", "--from", monday], env)
    (q,) = list(csv.DictReader(io.StringIO(r.output)))
    assert q["queue"] == "appliances" and q["aht_s"] == "300"

    r = invoke(reports, ["peaks", "--from", monday], env)
    peaks = list(csv.DictReader(io.StringIO(r.output)))
    assert [p["start"][11:16] for p in peaks] == ["09:00", "14:00"]

    out = tmp_path / "agents.csv"
    r = invoke(reports, ["agents", "--from", monday, "--csv", str(out)], env)
    assert r.exit_code == 0 and out.read_text().startswith("start,end,queue,agent_id")
