"""Password hashing with argon2id (argon2-cffi): hash on write, verify off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()

#: Verified against when the username does not exist, so a miss costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash("cti-no-such-user")

MIN_LENGTH = 8
MAX_LENGTH = 1024


class WeakPassword(ValueError):
    """A password that cti refuses to store."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password: at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password: at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing or malformed hash never matches (but costs the same)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    """:func:`verify_password` in a worker thread (argon2 takes tens of milliseconds on purpose)."""
    return await asyncio.to_thread(verify_password, stored_hash, password)
