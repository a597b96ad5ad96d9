"""Issue 17, item 10: hostile input is a 400 naming the field, never a 5xx, on every route of the app.

A running daemon (real HTTP on loopback, PostgreSQL and SQLite): first the issue's cases on every
route (5,000 ``[``, lone surrogates, integers too large for the database, ``Infinity``/``1e400``,
years 1 and 9999), then hypothesis over every route of the app's router with hostile path
values, query strings and JSON bodies."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from cti.agents.accounts import add_agent
from cti.agents.passwords import hash_password
from cti.app import Daemon
from cti.config import Settings

#: 503 is the documented answer of routes that need AMI, off in these tests
AMI_ROUTES = re.compile(r"^/api/(agent/state|outbound/.*dial.*|outbound/.*call.*)")
SKIP = {("POST", "/api/logout")}  # ends the test's own session

DEEP = "[" * 5000
HOSTILE_BODIES = [DEEP, '{"a": ' * 3000 + "1" + "}" * 3000, '"\\ud800"', '{"username": "\\ud800", "password": "x"}',
                  '{"description": "\\udfff", "notes": "\\ud800", "family_name": "\\ud800", "q": "\\ud800"}',
                  '{"customer_id": 99999999999999999999999, "owner_id": 99999999999999999999, "id": 2147483648}',
                  '{"customer_id": Infinity, "priority": NaN, "limit": -Infinity}', '{"customer_id": 1e400}',
                  '{"due_date": "0001-01-01", "purchased_on": "9999-12-31", "from": "0001-01-01T00:00:00+08:00"}',
                  '{"family_name": "x", "phones": ["13800138000"], "products": '
                  '[{"product_line": "mobile", "model": "m", "purchased_on": "9999-12-31"}]}']
HOSTILE_PATH = ["99999999999999999999", "2147483648", "-9223372036854775809", "%ED%A0%80", "0001-01-01", "1e400"]
HOSTILE_QUERY = ["limit=99999999999999999999", "offset=2147483648", "customer_id=99999999999999999999",
                 "q=%ED%A0%80", "status=%ED%A0%80", "from=0001-01-01", "to=9999-12-31", "day=9999-12-31",
                 "since=99999999999999999999", "sl=1e400", "id=-99999999999999999999"]


def routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter") or (info.get("prefix", "") + "/{filename}")
        for route in resource:
            if route.method in ("HEAD", "OPTIONS", "*") or (route.method, path) in SKIP:
                continue
            out.append((route.method, path))
    return sorted(set(out))


def fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


class Client:
    def __init__(self, base: str, http: aiohttp.ClientSession, token: str) -> None:
        self.base, self.http, self.token = base, http, token

    async def status(self, method: str, path: str, body: str | None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        async with self.http.request(method, self.base + path, data=body, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=30)) as r:
            return r.status, (await r.read()).decode("utf-8", "replace")[:300]  # /api/reports/export.pdf is binary


@pytest.fixture
async def client(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Client, list[tuple[str, str]]]]:
    s = settings.replace("ami", enabled=False).replace("agi", port=0).replace("http", port=0)
    daemon = Daemon(s)
    await daemon.start()
    try:
        async with daemon.sessionmaker() as session, session.begin():
            await add_agent(await session.connection(), "admin", hash_password("admin-password"), role="admin")
        base = f"http://127.0.0.1:{daemon.web.port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/api/login", json={"username": "admin", "password": "admin-password"}) as r:
                token = (await r.json())["token"]
            yield Client(base, http, token), routes(daemon.web.app)
    finally:
        await daemon.stop()


def server_error(method: str, path: str, status: int) -> bool:
    return status >= 500 and not (status == 503 and AMI_ROUTES.match(path))


async def test_the_issues_hostile_inputs_are_400_on_every_route(client) -> None:
    c, all_routes = client
    bad = []
    for method, path in all_routes:
        cases = [(fill(path, "1"), b) for b in HOSTILE_BODIES] if method in ("POST", "PUT", "PATCH") else []
        cases += [(fill(path, v), None) for v in HOSTILE_PATH if "{" in path]
        cases += [(fill(path, "1") + "?" + q, None) for q in HOSTILE_QUERY]
        for url, body in cases:
            status, text = await c.status(method, url, body)
            if server_error(method, path, status):
                bad.append((method, url[:80], (body or "")[:40], status, text[:80]))
    assert bad == []
    # and the answer names the field
    status, text = await c.status("POST", "/api/login", DEEP)
    assert status == 400 and "nested" in text
    status, text = await c.status("GET", "/api/customers/99999999999999999999", None)
    assert status == 400 and "id" in json.loads(text)["error"]
    status, text = await c.status("POST", "/api/customers", HOSTILE_BODIES[-1])
    assert status == 400 and "products[0].purchased_on" in json.loads(text)["error"]


# -- hypothesis over every route ------------------------------------------------------------
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**31 - 2, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["\ud800", "0001-01-01", "9999-12-31T23:59:59", "1e400", "", "'; drop table calls; --",
                     "13800138000", "mobile", "complaint", "open", "admin"]))
JSON = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["id", "customer_id", "owner_id", "uniqueid", "description", "notes", "status",
                                     "family_name", "phones", "products", "due", "limit", "q", "category",
                                     "product_line", "disposition", "title", "body", "action", "state"]),
                    inner, max_size=5)), max_leaves=12)
PATH_VALUES = st.one_of(st.sampled_from(HOSTILE_PATH + ["1", "0", "-1", "abc"]),
                        st.integers(min_value=-2**70, max_value=2**70).map(str))
QUERY = st.dictionaries(st.sampled_from(["q", "limit", "offset", "status", "customer_id", "from", "to", "day",
                                         "sl", "since", "id", "scope"]),
                        st.one_of(st.text(max_size=12), PATH_VALUES, st.sampled_from(["0001-01-01", "9999-12-31"])),
                        max_size=3)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the PostgreSQL run is the test above
async def test_no_route_answers_5xx_to_generated_input(client) -> None:
    c, all_routes = client
    examples: list[tuple[Any, ...]] = []

    # hypothesis draws the examples (synchronously); each is then sent to the running daemon
    @hsettings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(route=st.sampled_from(all_routes), value=PATH_VALUES, query=QUERY, body=JSON)
    def draw(route: tuple[str, str], value: str, query: dict[str, str], body: Any) -> None:
        examples.append((route, value, query, body))

    draw()
    failures = []
    for (method, path), value, query, body in examples:
        url = fill(path, value)
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items() if "&" not in v and "#" not in v)
        status, text = await c.status(method, url, _json_text(body) if method in ("POST", "PUT", "PATCH") else None)
        if server_error(method, path, status):
            failures.append((method, url[:100], _json_text(body)[:100], status, text[:100]))
    assert failures == []
