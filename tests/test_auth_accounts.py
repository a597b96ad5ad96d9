"""``cti agents add/list/passwd`` and the password hashes they store."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from cti.agents.passwords import verify_password
from cti.cli import main
from cti.db.engine import create_engine
from cti.db.tables import agent_skills, agents


def _run(db_url: str, *args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, env={"CTI_DATABASE_URL": db_url}, catch_exceptions=False)


async def _stored(db_url: str, username: str):
    eng = create_engine(db_url)
    try:
        async with eng.connect() as conn:
            row = (await conn.execute(select(agents).where(agents.c.username == username))).mappings().first()
            skills = dict((await conn.execute(select(agent_skills.c.queue, agent_skills.c.penalty)
                                              .where(agent_skills.c.agent_id == row["id"]))).all()) if row else {}
            return row, skills
    finally:
        await eng.dispose()


def test_agents_add_list_passwd(tmp_path):
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}"
    r = _run(db_url, "agents", "add", "alice", "--name", "Alice", "--interface", "PJSIP/1001",
             "--skill", "appliances", "--skill", "complaints:2", "--password", "s3cret-pass")
    assert r.exit_code == 0, r.output
    import asyncio

    row, skills = asyncio.run(_stored(db_url, "alice"))
    assert row["password_hash"].startswith("$argon2id$") and "s3cret-pass" not in row["password_hash"]
    assert verify_password(row["password_hash"], "s3cret-pass") and not verify_password(row["password_hash"], "nope")
    assert skills == {"appliances": 0, "complaints": 2}

    r = _run(db_url, "agents", "add", "sue", "--role", "supervisor", input="sup-password\nsup-password\n")
    assert r.exit_code == 0, r.output
    r = _run(db_url, "agents", "list")
    assert "alice" in r.output and "PJSIP/1001" in r.output and "supervisor" in r.output
    assert "argon2" not in r.output

    r = _run(db_url, "agents", "passwd", "alice", "--password", "another-pass")
    assert r.exit_code == 0
    row, _ = asyncio.run(_stored(db_url, "alice"))
    assert verify_password(row["password_hash"], "another-pass")


def test_agents_add_refuses_duplicates_and_weak_passwords(tmp_path):
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'cti.db'}"
    assert _run(db_url, "agents", "add", "bob", "--interface", "PJSIP/1002", "--password", "long-enough").exit_code == 0
    r = _run(db_url, "agents", "add", "bob2", "--interface", "PJSIP/1002", "--password", "long-enough")
    assert r.exit_code != 0 and "interface" in r.output
    r = _run(db_url, "agents", "add", "bob", "--password", "long-enough")
    assert r.exit_code != 0 and "username" in r.output
    r = _run(db_url, "agents", "add", "carl", "--password", "short")
    assert r.exit_code != 0 and "8 characters" in r.output
    r = _run(db_url, "agents", "passwd", "nobody", "--password", "long-enough")
    assert r.exit_code != 0 and "no account" in r.output
