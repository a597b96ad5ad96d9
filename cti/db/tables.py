"""SQLAlchemy Core tables: the same schema as ``schema.sql`` (tests/test_schema.py proves it)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)

metadata = MetaData()

#: Surrogate keys: INTEGER PRIMARY KEY (SQLite rowid alias; identity column on PostgreSQL).
Id = Integer


class UtcDateTime(TypeDecorator):
    """Aware UTC datetimes on every database (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


Ts = UtcDateTime

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("family_name", Text, nullable=False, server_default=text("''")),
    Column("given_name", Text, nullable=False, server_default=text("''")),
    Column("title", Text, nullable=False, server_default=text("''")),
    Column("language", Text, nullable=False, server_default=text("'zh'")),
    Column("vip", Boolean, nullable=False, server_default=false()),
    Column("dealer", Text),
    Column("email", Text),
    Column("greeting", Text),
    Column("created_at", Ts, nullable=False),
    Column("updated_at", Ts, nullable=False),
    CheckConstraint("language IN ('zh', 'en')"),
)

customer_phones = Table(
    "customer_phones",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("e164", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False, server_default=text("'unknown'")),
    Column("raw", Text),
    CheckConstraint("kind IN ('mobile', 'landline', 'unknown')"),
    Index("ix_customer_phones_customer_id", "customer_id"),
)

PRODUCT_LINES = ("appliances", "mobile", "office")

products = Table(
    "products",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("product_line", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("serial", Text),
    Column("purchased_on", Date),
    CheckConstraint("product_line IN ('appliances', 'mobile', 'office')"),
    Index("ix_products_customer_line", "customer_id", "product_line"),
)

#: Routing facts per caller number, derived: kept by triggers (cti/customers/facts.py), read by
#: the FastAGI lookup, never written by the application. A WITHOUT ROWID table on SQLite.
caller_facts = Table(
    "caller_facts",
    metadata,
    Column("e164", Text, primary_key=True),
    Column("customer_id", Id, nullable=False),
    Column("language", Text, nullable=False),
    Column("vip", Boolean, nullable=False),
    Column("greeting", Text),
    Column("family_name", Text, nullable=False),
    Column("given_name", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("open_complaint", Boolean, nullable=False),
    Column("product_lines", Integer, nullable=False),
    Index("ix_caller_facts_customer_id", "customer_id"),
    sqlite_with_rowid=False,
)

agents = Table(
    "agents",
    metadata,
    Column("id", Id, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("display_name", Text, nullable=False, server_default=text("''")),
    Column("role", Text, nullable=False, server_default=text("'agent'")),
    Column("interface", Text, unique=True),
    Column("password_hash", Text),
    Column("experienced", Boolean, nullable=False, server_default=false()),
    Column("language", Text, nullable=False, server_default=text("'zh'")),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", Ts, nullable=False),
    Column("token_version", Integer, nullable=False, server_default=text("0")),
    CheckConstraint("role IN ('agent', 'supervisor', 'admin')"),
)

agent_skills = Table(
    "agent_skills",
    metadata,
    Column("agent_id", Id, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    Column("queue", Text, nullable=False),
    Column("penalty", Integer, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("agent_id", "queue"),
)

calls = Table(
    "calls",
    metadata,
    Column("id", Id, primary_key=True),
    Column("server", Text, nullable=False, server_default=text("'default'")),
    Column("uniqueid", Text, nullable=False),
    Column("linkedid", Text),
    Column("caller_number", Text),
    Column("caller_e164", Text),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="SET NULL")),
    Column("dialed", Text),
    Column("route", Text),
    Column("queue", Text),
    Column("priority", Integer),
    Column("ivr_choice", Text),
    Column("started_at", Ts, nullable=False),
    Column("queued_at", Ts),
    Column("answered_at", Ts),
    Column("ended_at", Ts),
    Column("wait_s", Float),
    Column("talk_s", Float),
    Column("outcome", Text),
    Column("agent_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("agent_interface", Text),
    Column("disposition", Text),
    Column("notes", Text),
    UniqueConstraint("server", "uniqueid"),
    Index("ix_calls_customer_started", "customer_id", "started_at"),
    Index("ix_calls_started_at", "started_at"),
)

#: Every save of a call's wrap-up (the ``calls`` row holds the latest); version 2+ are edits.
call_wrapups = Table(
    "call_wrapups",
    metadata,
    Column("id", Id, primary_key=True),
    Column("call_id", Id, ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("agent_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("author", Text, nullable=False),
    Column("disposition", Text, nullable=False),
    Column("notes", Text, nullable=False),
    Column("saved_at", Ts, nullable=False),
    UniqueConstraint("call_id", "version"),
)

TICKET_STATES = ("open", "answered", "resolved", "closed", "reopened")
#: States in which a complaint still counts as open for routing and the screen-pop.
OPEN_TICKET_STATES = ("open", "answered", "reopened")

tickets = Table(
    "tickets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("call_id", Id, ForeignKey("calls.id", ondelete="SET NULL")),
    Column("category", Text, nullable=False, server_default=text("'complaint'")),
    Column("product_line", Text),
    Column("description", Text, nullable=False, server_default=text("''")),
    Column("status", Text, nullable=False, server_default=text("'open'")),
    Column("owner_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("sla_deadline", Ts),
    Column("created_at", Ts, nullable=False),
    Column("updated_at", Ts, nullable=False),
    Column("created_by", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("escalation_level", Integer, nullable=False, server_default=text("0")),
    Column("escalated_at", Ts),
    CheckConstraint("status IN ('open', 'answered', 'resolved', 'closed', 'reopened')"),
    Index("ix_tickets_customer_status", "customer_id", "status"),
    Index("ix_tickets_status_deadline", "status", "sla_deadline"),
    Index("ix_tickets_owner_status", "owner_id", "status"),
)

#: Immutable (an UPDATE trigger refuses changes: cti/tickets/guards.py).
ticket_history = Table(
    "ticket_history",
    metadata,
    Column("id", Id, primary_key=True),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("at", Ts, nullable=False),
    Column("actor_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text),
    Column("from_owner_id", Integer),
    Column("to_owner_id", Integer),
    Column("detail", Text, nullable=False, server_default=text("''")),
    Index("ix_ticket_history_ticket", "ticket_id", "id"),
)

org_people = Table(
    "org_people",
    metadata,
    Column("id", Id, primary_key=True),
    Column("agent_id", Id, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("manager_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("department", Text, nullable=False, server_default=text("''")),
    Column("product_line", Text),
    Column("engineer", Boolean, nullable=False, server_default=false()),
    Column("email", Text),
    Column("webhook_url", Text),
    Column("created_at", Ts, nullable=False),
    Column("updated_at", Ts, nullable=False),
    Index("ix_org_people_manager", "manager_id"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True),
    Column("channel", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("subject", Text, nullable=False, server_default=text("''")),
    Column("body", Text, nullable=False),
    Column("dedupe_key", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Ts, nullable=False),
    Column("last_error", Text),
    Column("created_at", Ts, nullable=False),
    Column("sent_at", Ts),
    CheckConstraint("channel IN ('email', 'webhook')"),
    CheckConstraint("status IN ('pending', 'sent', 'failed')"),
    Index("ix_notifications_status_next", "status", "next_attempt_at"),
)

kb_articles = Table(
    "kb_articles",
    metadata,
    Column("id", Id, primary_key=True),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("product_line", Text),
    Column("tags", Text, nullable=False, server_default=text("''")),
    Column("search_text", Text, nullable=False, server_default=text("''")),
    Column("created_by", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("created_at", Ts, nullable=False),
    Column("updated_at", Ts, nullable=False),
    Index("ix_kb_articles_product_line", "product_line"),
)

QUESTION_STATES = ("open", "answered", "published")

kb_questions = Table(
    "kb_questions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("question", Text, nullable=False),
    Column("product_line", Text),
    Column("asked_by", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="SET NULL")),
    Column("call_id", Id, ForeignKey("calls.id", ondelete="SET NULL")),
    Column("ticket_id", Id, ForeignKey("tickets.id", ondelete="SET NULL")),
    Column("status", Text, nullable=False, server_default=text("'open'")),
    Column("owner_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("escalation_level", Integer, nullable=False, server_default=text("0")),
    Column("escalated_at", Ts),
    Column("sla_deadline", Ts),
    Column("answer", Text),
    Column("answered_by", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("answered_at", Ts),
    Column("article_id", Id, ForeignKey("kb_articles.id", ondelete="SET NULL")),
    Column("created_at", Ts, nullable=False),
    Column("updated_at", Ts, nullable=False),
    CheckConstraint("status IN ('open', 'answered', 'published')"),
    Index("ix_kb_questions_status_deadline", "status", "sla_deadline"),
    Index("ix_kb_questions_owner_status", "owner_id", "status"),
)

DEPLOY_ACTIONS = ("deploy", "rollback")
DEPLOY_RESULTS = ("deployed", "unchanged", "refused", "failed", "rolled_back")

dialplan_deploys = Table(
    "dialplan_deploys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("version", Text, nullable=False, unique=True),
    Column("action", Text, nullable=False),
    Column("result", Text, nullable=False),
    Column("deployed_by", Text, nullable=False),
    Column("host", Text, nullable=False, server_default=text("''")),
    Column("started_at", Ts, nullable=False),
    Column("finished_at", Ts),
    Column("files", Text, nullable=False, server_default=text("'{}'")),
    Column("reloads", Text, nullable=False, server_default=text("'[]'")),
    Column("message", Text, nullable=False, server_default=text("''")),
    CheckConstraint("action IN ('deploy', 'rollback')"),
    CheckConstraint("result IN ('deployed', 'unchanged', 'refused', 'failed', 'rolled_back')"),
    Index("ix_dialplan_deploys_started_at", "started_at"),
)

# -- outbound follow-ups (cti/outbound/) ---------------------------------------------------------
FOLLOWUP_STATES = ("open", "done", "cancelled", "exhausted")
FOLLOWUP_OUTCOMES = ("reached", "no_answer", "call_back_later", "wrong_number", "refused")
ATTEMPT_STATES = ("pending", "queued", "connected", "failed", "done")
LEAD_STATES = ("new", "contacted", "won", "lost")
CREDIT_PARTIES = ("dealer", "agent", "call_center")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


dealers = Table(
    "dealers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False, server_default=text("''")),
    Column("territory", Text, nullable=False, server_default=text("''")),
    Column("created_at", Ts, nullable=False),
)

dealer_contacts = Table(
    "dealer_contacts",
    metadata,
    Column("agent_id", Id, ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
    Column("dealer", Text, nullable=False),
    Column("created_at", Ts, nullable=False),
    PrimaryKeyConstraint("agent_id"),
    Index("ix_dealer_contacts_dealer", "dealer"),
)

contact_preferences = Table(
    "contact_preferences",
    metadata,
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("timezone", Text),
    Column("hours", Text, nullable=False, server_default=text("'{}'")),
    Column("updated_at", Ts, nullable=False),
    PrimaryKeyConstraint("customer_id"),
)

outbound_campaigns = Table(
    "outbound_campaigns",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("reason", Text, nullable=False),
    Column("created_by", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("created_at", Ts, nullable=False),
)

outbound_followups = Table(
    "outbound_followups",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("open_customer_id", Integer, unique=True),
    Column("status", Text, nullable=False, server_default=text("'open'")),
    Column("due_at", Ts, nullable=False),
    Column("due_until", Ts),
    Column("owner_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("skill", Text),
    Column("campaign_id", Id, ForeignKey("outbound_campaigns.id", ondelete="SET NULL")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Ts),
    Column("pending_attempt_id", Integer, unique=True),
    Column("outcome", Text),
    Column("created_at", Ts, nullable=False),
    Column("updated_at", Ts, nullable=False),
    Column("closed_at", Ts),
    Column("closed_by", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    CheckConstraint(_in("status", FOLLOWUP_STATES)),
    CheckConstraint(_in("outcome", FOLLOWUP_OUTCOMES)),
    Index("ix_outbound_followups_status_due", "status", "due_at"),
    Index("ix_outbound_followups_owner_status", "owner_id", "status"),
    Index("ix_outbound_followups_customer", "customer_id"),
)

outbound_reasons = Table(
    "outbound_reasons",
    metadata,
    Column("id", Id, primary_key=True),
    Column("followup_id", Id, ForeignKey("outbound_followups.id", ondelete="CASCADE"), nullable=False),
    Column("reason", Text, nullable=False),
    Column("source", Text, nullable=False, server_default=text("'manual'")),
    Column("source_key", Text, unique=True),
    Column("detail", Text, nullable=False, server_default=text("''")),
    Column("created_at", Ts, nullable=False),
    Index("ix_outbound_reasons_followup", "followup_id"),
)

outbound_attempts = Table(
    "outbound_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("followup_id", Id, ForeignKey("outbound_followups.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("agent_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("phone_e164", Text, nullable=False),
    Column("reasons", Text, nullable=False, server_default=text("''")),
    Column("action_id", Text, unique=True),
    Column("uniqueid", Text),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("contact", Boolean, nullable=False, server_default=false()),
    Column("failure", Text),
    Column("outcome", Text),
    Column("notes", Text, nullable=False, server_default=text("''")),
    Column("started_at", Ts, nullable=False),
    Column("ended_at", Ts),
    CheckConstraint(_in("status", ATTEMPT_STATES)),
    CheckConstraint(_in("outcome", FOLLOWUP_OUTCOMES)),
    Index("ix_outbound_attempts_customer_started", "customer_id", "started_at"),
    Index("ix_outbound_attempts_followup", "followup_id"),
    Index("ix_outbound_attempts_agent_started", "agent_id", "started_at"),
)

do_not_call = Table(
    "do_not_call",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE")),
    Column("e164", Text),
    Column("reason", Text, nullable=False, server_default=text("''")),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_by_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("recorded_at", Ts, nullable=False),
    CheckConstraint("customer_id IS NOT NULL OR e164 IS NOT NULL"),
    Index("ix_do_not_call_customer", "customer_id"),
    Index("ix_do_not_call_e164", "e164"),
)

outbound_leads = Table(
    "outbound_leads",
    metadata,
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("dealer", Text),
    Column("followup_id", Id, ForeignKey("outbound_followups.id", ondelete="SET NULL")),
    Column("attempt_id", Id, ForeignKey("outbound_attempts.id", ondelete="SET NULL")),
    Column("found_by", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("need", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'new'")),
    Column("result", Text, nullable=False, server_default=text("''")),
    Column("created_at", Ts, nullable=False),
    Column("updated_at", Ts, nullable=False),
    CheckConstraint(_in("status", LEAD_STATES)),
    Index("ix_outbound_leads_dealer_status", "dealer", "status"),
    Index("ix_outbound_leads_customer", "customer_id"),
)

outbound_lead_credits = Table(
    "outbound_lead_credits",
    metadata,
    Column("lead_id", Id, ForeignKey("outbound_leads.id", ondelete="CASCADE"), nullable=False),
    Column("party_kind", Text, nullable=False),
    Column("party", Text, nullable=False),
    Column("share", Float, nullable=False),
    Column("rule", Text, nullable=False, server_default=text("''")),
    PrimaryKeyConstraint("lead_id", "party_kind", "party"),
    CheckConstraint(_in("party_kind", CREDIT_PARTIES)),
)

handover_notes = Table(
    "handover_notes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("team", Text, nullable=False),
    Column("author_id", Id, ForeignKey("agents.id", ondelete="SET NULL")),
    Column("followup_id", Id, ForeignKey("outbound_followups.id", ondelete="CASCADE")),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE")),
    Column("body", Text, nullable=False),
    Column("created_at", Ts, nullable=False),
    Index("ix_handover_notes_team_created", "team", "created_at"),
)

routing_rule_versions = Table(
    "routing_rule_versions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("version", Integer, nullable=False, unique=True),
    Column("rules", Text, nullable=False),
    Column("created_by", Text, nullable=False, server_default=text("''")),
    Column("created_at", Ts, nullable=False),
    Column("comment", Text, nullable=False, server_default=text("''")),
    Column("active", Boolean, nullable=False, server_default=false()),
    Index("ix_routing_rule_versions_active", "active"),
)
