"""Knowledge base: articles, Chinese + English full-text search, screen-pop suggestions, and the
learning loop (questions to back-office engineers whose approved answers become articles).

- ``tokens``     CJK bigrams + lower-cased words: the indexed text (pure)
- ``fts``        the dialect-specific index: SQLite FTS5 / PostgreSQL GIN on to_tsvector('simple', ...)
- ``articles``   add, update, import, ``search(conn, query)``, ``suggest(conn, product_lines, ivr_choice, limit)``
- ``questions``  KnowledgeBase: ask -> engineer (deadline + escalation by the TicketScheduler) -> answer
                 (to the asking agent and the ticket) -> approve (a new article)
- ``http``       REST endpoints for cti/web (``add_routes``); ``cli``: ``cti kb``
"""
