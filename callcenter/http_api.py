"""The daemon's HTTP JSON API (read-only views for now; the web pages come later).

Routes (all JSON; errors are ``{"error": ..., "field": ...}`` with 400/404):

* ``GET /api/health``: AMI connection, reconnects, resyncs, live channels and calls;
* ``GET /api/calls``: calls in progress (from the call-state model);
* ``GET /api/call-records?limit=N&agent=ID&queue=NAME``: recent call records;
* ``GET /api/call-records/<ticket>``: one call record;
* ``GET /api/staffing/hotline``: live Erlang advice for the hotline queue.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from callcenter.engine import Engine

__all__ = ["ApiError", "ApiResource"]


class ApiError(Exception):
    """A request the API refuses: HTTP status, message, and the offending field."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "items") and callable(value.items):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _arg(request: Request, name: str) -> str | None:
    values = (request.args or {}).get(name.encode())
    if not values:
        return None
    try:
        text: str = values[0].decode("utf-8")
        return text
    except UnicodeDecodeError:
        raise ApiError(400, "not valid UTF-8", name) from None


def _int_arg(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    text = _arg(request, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"expected an integer {lo}..{hi}, got {text!r}", name) from None
    if not lo <= value <= hi:
        raise ApiError(400, f"expected an integer {lo}..{hi}, got {value}", name)
    return value


class ApiResource(Resource):
    """Dispatches ``/api/...`` paths to the engine's views."""

    isLeaf = True

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    def render_GET(self, request: Request) -> bytes | int:
        path = [p.decode("utf-8", "replace") for p in (request.postpath or []) if p]
        try:
            result = self._route(path, request)
        except ApiError as exc:
            return self._error(request, exc)
        if isinstance(result, Deferred):
            result.addCallbacks(lambda value: self._finish(request, 200, value),
                                lambda failure: self._failed(request, failure))
            return NOT_DONE_YET
        return self._body(request, 200, result)

    def _route(self, path: list[str], request: Request) -> Any:
        engine = self.engine
        if path == ["health"]:
            return engine.health()
        if path == ["calls"]:
            now = engine.clock.seconds()
            return {"calls": list(engine.calls.calls(now).values())}
        if path == ["staffing", "hotline"]:
            return {"queue": engine.hotline_queue, "advice": engine.staffing_advice()}
        if path and path[0] == "call-records":
            repo = engine.repository
            if repo is None:
                raise ApiError(503, "no database configured")
            if len(path) == 1:
                limit = _int_arg(request, "limit", 50, 1, 1000)
                d = repo.list_recent_call_records(limit=limit, agent_id=_arg(request, "agent"),
                                                  queue=_arg(request, "queue"))
                return d.addCallback(lambda records: {"call_records": records})
            if len(path) == 2:
                ticket = path[1]

                def found(record: Any) -> Any:
                    if record is None:
                        raise ApiError(404, f"no call record {ticket!r}", "ticket")
                    return record

                return repo.get_call_record_by_ticket(ticket).addCallback(found)
        raise ApiError(404, "no such resource: /api/" + "/".join(path))

    def _failed(self, request: Request, failure: Failure) -> None:
        if failure.check(ApiError):
            exc = failure.value
            assert isinstance(exc, ApiError)
            self._finish(request, exc.status, {"error": exc.message, "field": exc.field})
        elif failure.check(ValueError):
            self._finish(request, 400, {"error": str(failure.value), "field": None})
        else:
            self._finish(request, 500, {"error": "internal error", "field": None})

    def _error(self, request: Request, exc: ApiError) -> bytes:
        return self._body(request, exc.status, {"error": exc.message, "field": exc.field})

    def _body(self, request: Request, status: int, value: Any) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return json.dumps(_jsonable(value), ensure_ascii=False).encode("utf-8")

    def _finish(self, request: Request, status: int, value: Any) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        request.write(self._body(request, status, value))
        request.finish()
