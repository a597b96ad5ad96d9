"""AMI: sans-IO parser (protocol), typed events (events), connection lifecycle (link), service.

Why cti's own link instead of panoramisk's ``Manager`` (panoramisk stays a dependency
and is the benchmark baseline): the Manager re-sends every unanswered non-"forgetable"
action after a reconnect (an ``Originate`` would dial twice), runs coroutine callbacks as
unordered tasks with unobserved exceptions, retries at a fixed ``reconnect_timeout``
(no backoff, no jitter), sends pings without a deadline (a half-open socket is never
noticed), has no resync hook, decodes with ``errors='ignore'`` and completes list
actions by message-text heuristics. Each of those is a requirement here; owning ~300
lines of asyncio streams on the parser we need anyway is simpler than patching around them.
"""

from cti.ami.link import (
    AmiActionError,
    AmiAuthError,
    AmiDisconnectedError,
    AmiError,
    AmiNotConnectedError,
    AmiVersionError,
)
from cti.ami.protocol import AmiMessage, AmiParser
from cti.ami.service import AmiService

__all__ = [
    "AmiActionError", "AmiAuthError", "AmiDisconnectedError", "AmiError", "AmiMessage", "AmiNotConnectedError",
    "AmiParser", "AmiService", "AmiVersionError",
]
