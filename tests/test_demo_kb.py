"""The demo's knowledge base: 10-20 seeded articles (warranty, installation, error codes; zh and en) that
search finds in either language and the pop suggests by product line and IVR choice (issue 18, item 8)."""

from __future__ import annotations

from datetime import datetime, timezone

from cti.demo.data import demo_customers, roster
from cti.demo.kb import ARTICLES
from cti.demo.seed import seed_world
from cti.kb.articles import search, suggest


def test_the_demo_kb_covers_warranty_installation_and_error_codes_in_both_languages():
    assert 10 <= len(ARTICLES) <= 20
    tags = " ".join(a["tags"] for a in ARTICLES)
    assert all(word in tags for word in ("warranty", "installation", "error-code"))
    assert any(a["title"].isascii() for a in ARTICLES) and any(not a["title"].isascii() for a in ARTICLES)


async def test_seeded_articles_are_found_and_suggested(engine):
    seeded = await seed_world(engine, demo_customers(), roster(200), now=datetime(2026, 12, 8, 1, tzinfo=timezone.utc))
    assert seeded.articles == len(ARTICLES) and seeded.org >= 5
    async with engine.connect() as conn:
        assert any("保修" in a["title"] for a in await search(conn, "保修"))
        assert any("E1" in a["title"] for a in await search(conn, "microwave error E1"))
        assert any(a["title"].startswith("Phone warranty") for a in await search(conn, "cracked screen"))
        popped = await suggest(conn, ["mobile"], "1", 3)  # a mobile customer who pressed 1
        assert popped and popped[0]["product_line"] == "mobile" and "ivr:1" in popped[0]["tags"]
    again = await seed_world(engine, demo_customers(), roster(200))
    assert not again.created and again.articles == 0 and again.org == 0  # not twice
