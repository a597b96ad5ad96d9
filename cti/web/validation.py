"""One request-validation layer in front of every handler: hostile input is a 400 naming the field, never a 500.

Checked before the handler runs (:func:`validation_middleware`):

* the body (POST/PUT/PATCH) arrives within ``http.body_timeout_s`` (else 408);
* a JSON body: nesting at most :data:`MAX_DEPTH` levels (``[[[[…`` made ``json`` recurse), no
  ``NaN``/``Infinity`` and no number that overflows to infinity (``1e400``), strings without lone
  surrogates (``"\\ud800"`` cannot be stored or encoded), integers within 64 bits (32 bits for ids);
* path and query values: integers within range (32 bits for ids, ``limit`` and ``offset``), no
  lone surrogates;
* date-like strings (``YYYY-MM-DD…``) anywhere: years :data:`MIN_YEAR`..:data:`MAX_YEAR` (year 1 or
  9999 overflow as soon as a time zone or a day is added).

What slips through anyway (an overflow deep in a handler, a value the database refuses) is still a
400 (``invalid value in the request``), logged with the route.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Awaitable, Callable

import structlog
from aiohttp import web
from sqlalchemy.exc import DataError

log = structlog.get_logger(__name__)

MAX_DEPTH = 32
MIN_YEAR, MAX_YEAR = 1900, 2999
INT64 = 2**63 - 1
INT32 = 2**31 - 1
#: query/path names holding database ids or row counts (INTEGER columns: 32 bits on PostgreSQL)
_SMALL_INT_NAMES = frozenset({"id", "limit", "offset", "page", "per_page", "version"})
_DATE = re.compile(r"(\d{4,})-\d\d-\d\d")
_INTEGER = re.compile(r"[+-]?\d+")
_JSON_TYPES = ("", "application/json", "text/plain")


class Invalid(ValueError):
    """A request value that cti refuses; ``str()`` names the field."""


def _small(name: str) -> bool:
    return name in _SMALL_INT_NAMES or name.endswith("_id")


def _check_string(field: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{field}: invalid Unicode (a lone surrogate)") from None
    m = _DATE.match(value)
    if m is not None and not MIN_YEAR <= int(m.group(1)) <= MAX_YEAR:
        raise Invalid(f"{field}: year {int(m.group(1))} outside {MIN_YEAR}-{MAX_YEAR}")


def _check_int(field: str, name: str, value: int) -> None:
    limit = INT32 if _small(name) else INT64
    if not -limit - 1 <= value <= limit:
        raise Invalid(f"{field}: integer out of range (at most {limit})")


def check_json(value: Any, field: str = "body", name: str = "", depth: int = 0) -> None:
    """Raise :class:`Invalid` naming the first bad value of a parsed JSON document."""
    if depth > MAX_DEPTH:
        raise Invalid(f"{field}: nested deeper than {MAX_DEPTH} levels")
    cls = value.__class__
    if cls is str:
        _check_string(field, value)
    elif cls is int:
        _check_int(field, name, value)
    elif cls is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise Invalid(f"{field}: not a finite number")
    elif cls is dict:
        for k, v in value.items():
            _check_string(f"{field} (a key)", k)
            check_json(v, f"{field}.{k}" if field != "body" else k, k, depth + 1)
    elif cls is list:
        for i, v in enumerate(value):
            check_json(v, f"{field}[{i}]", name, depth + 1)


def _refuse_constant(token: str) -> Any:
    raise Invalid(f"body: {token} is not a JSON number")


def parse_json_body(raw: bytes) -> Any:
    """The parsed body, or :class:`Invalid`; ``ValueError`` (not JSON at all) is left to the handler."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("body: not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise Invalid(f"body: nested deeper than {MAX_DEPTH} levels") from None
    check_json(data)
    return data


def check_params(kind: str, items: Any) -> None:
    """Path (``kind="path"``) or query values: integers in range, valid Unicode, sane years."""
    for name, value in items:
        if not isinstance(value, str):
            continue
        field = f"{kind} {name}"
        _check_string(field, value)
        if name != "q" and len(value) < 400 and _INTEGER.fullmatch(value):
            _check_int(field, name, int(value))


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


def validation_middleware(body_timeout_s: float) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def validate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
        try:
            check_params("path", request.match_info.items())
            check_params("query", request.query.items())
            if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.can_read_body:
                try:
                    raw = await asyncio.wait_for(request.read(), body_timeout_s)  # cached for the handler
                except asyncio.TimeoutError:
                    raise web.HTTPRequestTimeout(text='{"error": "request body too slow"}',
                                                 content_type="application/json") from None
                if raw and request.content_type in _JSON_TYPES + ("application/octet-stream",):
                    try:
                        parse_json_body(raw)
                    except Invalid:
                        raise
                    except ValueError:
                        pass  # not JSON: the handler says what it expected
        except Invalid as exc:
            log.info("web.request_invalid", path=request.path[:200], reason=str(exc)[:200])
            raise _bad_request(str(exc)) from None
        try:
            return await handler(request)
        except (OverflowError, RecursionError, UnicodeError, DataError, Invalid) as exc:
            log.warning("web.request_value_refused", path=request.path[:200], error=type(exc).__name__,
                        detail=str(exc)[:200])
            raise _bad_request("invalid value in the request") from None

    return validate
