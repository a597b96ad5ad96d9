"""The process's file descriptors: raise the soft limit at start, share them between web and FastAGI."""

from __future__ import annotations

import os

import structlog

log = structlog.get_logger(__name__)

#: Never raise the soft limit past this (select()-free asyncio does not care; memory per fd does).
TARGET_NOFILE = 65536


def raise_nofile_limit(target: int = TARGET_NOFILE) -> int:
    """Raise ``RLIMIT_NOFILE``'s soft limit towards ``target`` (up to the hard limit); the soft limit after."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return target
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            log.info("fd_limit_raised", soft_before=soft, soft=want, hard=hard)
            return want
        except (ValueError, OSError) as exc:
            log.warning("fd_limit_not_raised", soft=soft, hard=hard, error=str(exc))
    return soft if soft != resource.RLIM_INFINITY else target


def open_fds() -> int:
    """Descriptors open in this process now (Linux /proc; elsewhere a guess)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 64


def web_connection_budget(configured: int, reserved: int) -> int:
    """Connections the web side may hold: ``configured``, lowered so ``reserved`` descriptors stay free."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except ImportError:  # pragma: no cover
        return configured
    if soft == resource.RLIM_INFINITY:
        return configured
    room = soft - open_fds() - reserved
    return max(16, min(configured, room))
