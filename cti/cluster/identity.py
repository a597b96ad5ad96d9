"""Node identity: a name unique among the cti nodes sharing one Redis."""

from __future__ import annotations

import os
import socket
import uuid


def make_node_id(configured: str = "") -> str:
    """``cluster.node_id`` when set, else ``<hostname>-<pid>-<random>`` (unique per process start).

    The random part makes a restarted process a new node: a lease still held in Redis by its
    previous life is not mistaken for its own.
    """
    if configured:
        return configured
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
