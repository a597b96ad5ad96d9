"""Is this AMI frame what Asterisk wrote, or did a caller's number write part of it?

Asterisk 22 C-escapes the *names* of a channel snapshot (``CallerIDName``, ``ConnectedLineName``)
but writes the *numbers* (``CallerIDNum``, ``ConnectedLineNum`` and their ``Dest``/``Transferer``...
prefixed forms) raw. PJSIP decodes ``%0D%0A`` in the From URI's user part, so a SIP caller's number
can carry CR/LF into every channel event of the call class (``Newchannel``, ``Newstate``...), which
the least-privilege AMI user receives: a number such as ``1%0D%0AQueue: complaints`` adds a header,
``1%0D%0A%0D%0AEvent: AgentConnect...`` ends the frame and starts forged ones (seen on the real
22.10.1 with SIPp; tests/test_sip_e2e.py). The dialplan cleans ``CALLERID(num)`` as its first step,
so only the events Asterisk emits before that step can carry it.

A snapshot is written in a fixed order: ``<p>CallerIDNum`` is always followed by ``<p>CallerIDName``
and ``<p>ConnectedLineNum`` by ``<p>ConnectedLineName``, and the names cannot hold a raw line
break. So a frame is tampered with when a number's line is not directly followed by its name's
line (a header injected, or the frame cut short), or when the name's line occurs twice (an injected
copy of it went first). What follows a tampered frame on the wire cannot be trusted either (it may
be a forged frame): the link drops the connection and resyncs.
"""

from __future__ import annotations

_PAIRS = (("CallerIDNum: ", "CallerIDName: "), ("ConnectedLineNum: ", "ConnectedLineName: "))


def tampering(raw: str) -> str | None:
    """Why the frame ``raw`` (CRLF-separated headers) was not written by Asterisk alone, or None."""
    for num, name in _PAIRS:
        at = raw.find(num)
        while at >= 0:
            nl = raw.rfind("\r\n", 0, at)
            line_start = 0 if nl < 0 else nl + 2
            prefix = raw[line_start:at]
            if "\r" in prefix or ":" in prefix:  # not at the start of a key (e.g. inside a value)
                at = raw.find(num, at + len(num))
                continue
            end = raw.find("\r\n", at)
            successor = prefix + name
            if end < 0 or not raw.startswith(successor, end + 2):
                return f"{prefix}{num[:-2]} is not followed by {successor[:-2]}"
            if raw.find("\r\n" + successor, end + 2 + len(successor)) >= 0:
                return f"{successor[:-2]} occurs twice"
            at = raw.find(num, end)
    return None
