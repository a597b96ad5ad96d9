"""``cti ami status`` against the simulated PBX, as a real process over a real socket."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from cti.sim.config import SimConfig
from cti.sim.pbx import SimPbx


@pytest.fixture
async def pbx():
    async with SimPbx(SimConfig(ami_port=0, agi_port=1, speed=50, seed=1)) as p:
        yield p


async def cti(port: int, secret: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "CTI_AMI_PORT": str(port), "CTI_AMI_USERNAME": "cti-min", "CTI_AMI_SECRET": secret,
           "CTI_LOG_LEVEL": "warning"}
    env.pop("CTI_CONFIG", None)
    exe = os.path.join(os.path.dirname(sys.executable), "cti")  # the console script
    proc = await asyncio.create_subprocess_exec(exe, *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_status_prints_the_live_state(pbx: SimPbx) -> None:
    code, out, err = await cti(pbx.ami_port, "cti-min-secret", "ami", "status")
    assert code == 0, err
    snap = json.loads(out)
    assert {q["queue"] for q in snap["queues"]} == {"complaints", "appliances", "mobile"}
    assert all(a["state"] == "ready" for a in snap["agents"]) and len(snap["agents"]) == 6
    assert snap["calls"] == []


async def test_status_with_a_wrong_secret_names_the_keys(pbx: SimPbx) -> None:
    code, out, err = await cti(pbx.ami_port, "wrong", "ami", "status")
    assert code == 1 and "ami.secret" in err and "wrong" not in err
