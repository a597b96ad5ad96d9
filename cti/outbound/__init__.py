"""Outbound follow-ups: call-back tasks and campaigns, the contact policy enforced at dial time,
preview dialing through AMI ``Originate``, leads routed to dealers with credits, handover reports.

Modules: ``policy`` (pure: caps, hours, opt-out, retries), ``rules`` (pure: events -> follow-ups),
``attribution`` (pure: who is credited for a lead), ``repository`` (tables), ``dialer`` (dial and
outcome), ``scheduler`` (bus events -> follow-ups), ``reports``, ``http``, ``cli``.
"""
