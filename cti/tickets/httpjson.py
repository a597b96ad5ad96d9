"""JSON plumbing shared by cti/tickets/http.py and cti/kb/http.py: bodies, errors, actor."""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any, Awaitable, Callable

from aiohttp import web

from cti.customers.scope import OutOfScope
from cti.kb.articles import ArticleError
from cti.kb.questions import QuestionError, QuestionForbidden
from cti.tickets.org import OrgError
from cti.tickets.repository import Actor, TicketConflict, TicketError, TicketForbidden, TicketNotFound
from cti.tickets.states import IllegalTransition

#: ``await require(request, *roles) -> account`` (with ``.id``, ``.username``, ``.role``); raises
#: HTTPUnauthorized/HTTPForbidden itself. cti/web passes ``Gate.require`` (reads) and its
#: origin-checking writer (writes).
Require = Callable[..., Awaitable[Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


#: the ``code`` of an error that names none, by HTTP status
STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
                413: "too_large", 429: "too_many", 502: "pbx_refused", 503: "unavailable"}


def error(cls: type[web.HTTPException], message: str, code: str | None = None, **params: Any) -> web.HTTPException:
    """A JSON error: ``error`` is English for API clients; ``code`` (with ``params``) a stable key that the
    pages translate (``apierr.<code>`` in backoffice-i18n.js), by default the status's."""
    data: dict[str, Any] = {"error": message, "code": code or STATUS_CODES.get(cls.status_code, "error")}
    if params:
        data["params"] = params
    return cls(text=json.dumps(data, ensure_ascii=False, default=str), content_type="application/json")


def reply(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(
        d, ensure_ascii=False, default=lambda o: o.isoformat() if isinstance(o, datetime) else str(o)))


async def body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise error(web.HTTPBadRequest, "expected a JSON object") from None
    if not isinstance(data, dict):
        raise error(web.HTTPBadRequest, "expected a JSON object")
    return data


def actor_of(account: Any) -> Actor:
    return Actor(int(account.id), str(account.username), str(account.role))


def opt_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise error(web.HTTPBadRequest, f"{name}: expected an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise error(web.HTTPBadRequest, f"{name}: expected an integer") from None


def opt_str(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise error(web.HTTPBadRequest, f"{name}: expected a string")
    return value


def domain_errors(handler: Handler) -> Handler:
    """Domain refusals as JSON HTTP errors: 404 not found, 403 forbidden, 409 state conflicts, 400 bad input."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except TicketNotFound as exc:
            raise error(web.HTTPNotFound, str(exc), getattr(exc, "code", None)) from None
        except (TicketForbidden, QuestionForbidden, OutOfScope) as exc:
            raise error(web.HTTPForbidden, str(exc), getattr(exc, "code", None)) from None
        except IllegalTransition as exc:
            raise error(web.HTTPConflict, str(exc), "illegal_transition", action=exc.action, status=exc.status) from None
        except TicketConflict as exc:
            raise error(web.HTTPConflict, str(exc), "changed") from None
        except (TicketError, QuestionError, ArticleError, OrgError) as exc:
            status = web.HTTPNotFound if str(exc).startswith("no ") else web.HTTPBadRequest
            raise error(status, str(exc), getattr(exc, "code", None)) from None

    return wrapped
