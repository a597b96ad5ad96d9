"""Bus topics published by cti/tickets and cti/kb (payloads: JSON-able dicts, ``at`` in epoch seconds).

Every payload names the agent(s) it is for, so the websocket hub can deliver it to them:

``ticket.created``       {ticket_id, customer_id, call_id, category, product_line, status, owner_id,
                         created_by, sla_deadline (ISO), at}
``ticket.updated``       {ticket_id, action: answer|resolve|close|reopen|assign, status, owner_id,
                         previous_owner_id, actor_id, customer_id, sla_deadline, at}
``ticket.escalated``     {ticket_id, customer_id, from_owner_id, owner_id, escalation_level,
                         sla_deadline (new), missed_deadline, at}: for the new owner (and the old).
``ticket.sla_breached``  {ticket_id, customer_id, owner_id, escalation_level, sla_deadline (new),
                         missed_deadline, at}: the deadline passed at the top of the chain
                         (a reminder to the top owner; the deadline restarts).
``kb.question``          {question_id, question, product_line, owner_id (engineer), asked_by,
                         customer_id, ticket_id, sla_deadline, at}: for the engineer.
``kb.question.escalated`` like ticket.escalated with question_id (``kb.question.sla_breached`` at the top).
``kb.answered``          {question_id, question, answer, asked_by, answered_by, ticket_id, customer_id, at}:
                         for the asking agent.
``kb.published``        {question_id, article_id, title, asked_by, approved_by, at}.
"""

TICKET_CREATED = "ticket.created"
TICKET_UPDATED = "ticket.updated"
TICKET_ESCALATED = "ticket.escalated"
TICKET_SLA_BREACHED = "ticket.sla_breached"
KB_QUESTION = "kb.question"
KB_QUESTION_ESCALATED = "kb.question.escalated"
KB_QUESTION_SLA_BREACHED = "kb.question.sla_breached"
KB_ANSWERED = "kb.answered"
KB_PUBLISHED = "kb.published"
