"""0003: products indexed on (customer_id, product_line), replacing the index on customer_id.

The FastAGI caller lookup asks, per call, whether the caller owns a product of each line;
with both columns in the index those tests never read the products table itself.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

revision = "0003"
description = "products: index (customer_id, product_line) for the caller lookup"


async def upgrade(conn: AsyncConnection) -> None:
    await conn.execute(text("CREATE INDEX ix_products_customer_line ON products (customer_id, product_line)"))
    await conn.execute(text("DROP INDEX ix_products_customer_id"))
