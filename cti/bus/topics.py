"""Bus topics and their payloads (plain JSON-able dicts; times are epoch seconds).

Subscribe by prefix: ``bus.subscribe("call.")``, ``bus.subscribe("agent.state")``.
Every payload carries ``server`` (the AMI endpoint's ``ami.server``) and ``at``.

Published by the FastAGI side (the lead's ``cti/agi``), consumed by ``cti/ami``:

``agi.decision``
    {server, uniqueid, caller_number, caller_e164, customer_id, queue, priority, action, route,
    ivr_choice, dialed, lang, at}. Several decisions for one call (menu, then IVR choice) merge. ``uniqueid`` is ``agi_uniqueid``: the caller's channel,
    the same that later sits in the queue.

Published by ``cti/ami`` (AmiService). Call payloads share the *call identity*
``{server, uniqueid, linkedid, caller_number, caller_name, caller_e164, customer_id}``:

``call.routed``        identity + {queue, route, at}: the decision was attached to the call.
``call.queued``        identity + {queue, position, count, priority, at}: joined a queue
                       (again after a blind transfer: one call, two legs).
``call.ringing``       identity + {queue, interface, member_name, priority, route, lang, dialed, at}:
                       the agent whose queue-member ``interface`` this is is being rung; the
                       screen-pop hub sends the pop to that agent only.
``call.ring_stopped``  identity + {queue, interface, reason: noanswer|answered_elsewhere|caller_left,
                       ring_time_s (noanswer only), at}.
``call.answered``      identity + {queue, interface, member_name, hold_time, ring_time, at}.
``call.abandoned``     identity + {queue, hold_time, position, at}.
``call.completed``     identity + {queue, interface, member_name, talk_time, reason: agent|caller|transfer, at}.
``call.transferred``   identity + {kind: blind|attended, queue, interface, context, extension, at}.
``call.ended``         the full call snapshot: identity + {channel, state: "ended", dialed, route,
                       queue (final), priority, ivr_choice, lang, started_at, queued_at,
                       answered_at, ended_at, wait_s, talk_s, agent_interface, agent_name,
                       ringing, transfers, outcome, legs: [{queue, queued_at, answered_at,
                       agent_interface, agent_name, hold_time, talk_time, result}]}.
``call.originate_result`` {server, action_id, response: Success|Failure, uniqueid, channel, reason, at}:
                       the outcome of a click-to-dial (``AmiService.originate``).
``agent.state``        {server, interface, name, state: ready|paused|ringing|on_call|wrap_up|
                       unavailable|logged_out, paused, paused_reason, queues: {queue: {queue,
                       penalty, paused, paused_reason, membership, status, in_call, calls_taken}},
                       ringing: [uniqueid], on_call: uniqueid|None, wrapup_until, at}.
``queue.changed``      {server, queue, waiting_count, oldest_joined_at, at} (full view:
                       ``AmiService.state.queue_snapshot(name, now)``).
``ami.link``           {server, state: connected|disconnected|resynced, at, ...}; resynced adds
                       {calls, agents, queues} counts.
``ami.pbx_restarted``  {server, at}: FullyBooted with Uptime 0 (all calls were lost).

Published by other parts:

``call.wrapped_up``    {server, uniqueid, agent, disposition, at}: the agent saved the wrap-up (cti/web).
``routing.rules_changed`` {version}: an admin saved or re-activated routing rules; every node reloads them.
``account.sessions_ended`` {agent_id, version}: a logout ended every session of the account; every node
                       closes its websocket (cti/web/sessions.py).
``ticket.*``, ``kb.*``  see cti/tickets/topics.py; ``outbound.*`` see cti/outbound/service.py.
"""

AGI_DECISION = "agi.decision"
CALL_ROUTED = "call.routed"
CALL_QUEUED = "call.queued"
CALL_RINGING = "call.ringing"
CALL_RING_STOPPED = "call.ring_stopped"
CALL_ANSWERED = "call.answered"
CALL_ABANDONED = "call.abandoned"
CALL_COMPLETED = "call.completed"
CALL_TRANSFERRED = "call.transferred"
CALL_ENDED = "call.ended"
CALL_ORIGINATE_RESULT = "call.originate_result"
AGENT_STATE = "agent.state"
QUEUE_CHANGED = "queue.changed"
AMI_LINK = "ami.link"
AMI_PBX_RESTARTED = "ami.pbx_restarted"
CALL_WRAPPED_UP = "call.wrapped_up"
ROUTING_RULES_CHANGED = "routing.rules_changed"
