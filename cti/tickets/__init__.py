"""Complaint tickets with an SLA, escalation up the org chart, and notifications.

- ``states``      the state machine (open, answered, resolved, closed, reopened), pure
- ``sla``         SLA deadlines per category (24 h default) and the injected clock, pure
- ``org``         the org chart (``org_people``): managers, departments, product lines, engineers
- ``repository``  ticket rows and their immutable history (``ticket_history``; ``guards`` adds the triggers)
- ``service``     TicketService: create, answer, resolve, close, reopen, assign, views (mine/team/overdue/escalated)
- ``escalation``  one batched, idempotent escalation pass (conditional UPDATE on the seen deadline)
- ``outbox``      notifications written with the change, delivered with retries (``notify``: SMTP, webhook)
- ``scheduler``   TicketScheduler(sessionmaker, bus, clock, notifier): start()/stop()/run_once()
- ``http``        REST endpoints for cti/web (``add_routes``); ``cli``: ``cti tickets``, ``cti org``
- ``topics``      bus topics published (ticket.*, kb.*)
"""
