"""0006: agents.token_version, the session version carried in every token (issue 17).

A logout or a password change increments it, so every token issued before stops working on every
node at once (tokens without the claim count as version 0, the value existing accounts start at).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

revision = "0006"
description = "agents.token_version: revocable sessions"


async def upgrade(conn: AsyncConnection) -> None:
    await conn.execute(text("ALTER TABLE agents ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0"))
