"""The ``asterisk -rx`` outputs deploy reads back (reload = "cli"), as Asterisk 22.10.1 printed
them for the shipped configuration (recorded with ``asterisk -rx`` on that version; in QUEUES the
``mobile`` entry is edited to another strategy, one waiting call and a dynamic member)."""

from __future__ import annotations

from cti.dialplan.reload import parse_dialplan_show, parse_queue_show

TRANSFER = """\
[ Context 'cti-transfer' created by 'pbx_config' ]
  '_[a-z].' =>      1. NoOp(cti transfer to a queue)              [transfer.conf:13]
                    2. Set(CTI_QUEUE=${EXTEN})                    [transfer.conf:14]
                    3. GotoIf($[${QUEUE_EXISTS(${CTI_QUEUE})}]?join) [transfer.conf:15]
                    4. Set(CTI_QUEUE=${DEFAULT_QUEUE})            [transfer.conf:16]
     [join]         5. Queue(${CTI_QUEUE},t)                      [transfer.conf:17]
                    6. Hangup()                                   [transfer.conf:18]

-= 1 extension (6 priorities) in 1 context. =-
"""

AGENTS = """\
[ Context 'agents' created by 'pbx_config' ]
  Include =>        'phones'                                      [pbx_config]
  Include =>        'cti-transfer'                                [pbx_config]

-= 0 extensions (0 priorities) in 1 context. =-
"""

INBOUND_HEAD = """\
[ Context 'cti-inbound' created by 'pbx_config' ]
  's' =>            1. Goto(cti-inbound,${CTI_LINE_NUMBER},1)     [800-line.conf:42]
  '_+X.' =>         1. Goto(cti-inbound,${EXTEN:1},1)             [800-line.conf:45]
  '_X.' =>          1. NoOp(cti 800 line)                         [800-line.conf:48]
                    2. Answer()                                   [800-line.conf:49]
     [ivr]          3. Read(CTI_DIGIT,${CTI_SOUNDS}/ivr-menu-${CTI_LANG},1,,2,5) [800-line.conf:77]
"""

MISSING = """\
There is no existence of 'nope' context
Command 'dialplan show nope' failed.
"""

QUEUES = """\
appliances has 0 calls (max unlimited) in 'rrmemory' strategy (0s holdtime, 0s talktime), W:0, C:0, A:0, SL:0.0%, SL2:0.0% within 20s
   No Members
   No Callers

complaints has 0 calls (max unlimited) in 'ringall' strategy (0s holdtime, 0s talktime), W:10, C:0, A:0, SL:0.0%, SL2:0.0% within 20s
   No Members
   No Callers

mobile has 1 call (max unlimited) in 'leastrecent' strategy (0s holdtime, 0s talktime), W:0, C:0, A:0, SL:0.0%, SL2:0.0% within 20s
   Members: 
      LiNa (Local/1001@phones) (dynamic) (ringinuse disabled) (Not in use) has taken no calls yet (login was 3 secs ago)
   No Callers

"""


def test_steps_labels_and_data_of_a_context() -> None:
    view = parse_dialplan_show(TRANSFER, "cti-transfer")
    assert view is not None and view.includes == ()
    assert [(e.exten, e.priority, e.app, e.data) for e in view.entries] == [
        ("_[a-z].", 1, "NoOp", "cti transfer to a queue"),
        ("_[a-z].", 2, "Set", "CTI_QUEUE=${EXTEN}"),
        ("_[a-z].", 3, "GotoIf", "$[${QUEUE_EXISTS(${CTI_QUEUE})}]?join"),
        ("_[a-z].", 4, "Set", "CTI_QUEUE=${DEFAULT_QUEUE}"),
        ("_[a-z].", 5, "Queue", "${CTI_QUEUE},t"),
        ("_[a-z].", 6, "Hangup", ""),
    ]


def test_includes_and_several_extensions() -> None:
    assert parse_dialplan_show(AGENTS, "agents").includes == ("phones", "cti-transfer")
    view = parse_dialplan_show(INBOUND_HEAD, "cti-inbound")
    assert view.extensions() == {"s": ["Goto"], "_+X.": ["Goto"], "_X.": ["NoOp", "Answer", "Read"]}


def test_a_missing_context() -> None:
    assert parse_dialplan_show(MISSING, "nope") is None


def test_queues_with_their_strategy() -> None:
    assert parse_queue_show(QUEUES) == {"appliances": "rrmemory", "complaints": "ringall", "mobile": "leastrecent"}
