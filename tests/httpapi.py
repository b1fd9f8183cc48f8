"""Requests to the JSON API resource in unit tests (no server): GET and POST, decoded."""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.web.test.requesthelper import DummyRequest

from callcenter.http_api import ApiResource
from callcenter.settings import AgentSettings
from callcenter.web_access import Caller

__all__ = ["get_json", "post_json", "signed_in"]


def signed_in(request: DummyRequest, person: AgentSettings | None) -> DummyRequest:
    """``request`` as SignInGuard hands it on for ``person`` (None: as it is, like the token)."""
    if person is not None:
        request._callcenter_caller = Caller(person=person)  # type: ignore[attr-defined]
    return request


def get_json(api: ApiResource, path: list[bytes], query: dict[bytes, list[bytes]] | None = None, *,
             person: AgentSettings | None = None) -> tuple[int, Any]:
    """GET /api/<path>?<query>: (status, decoded body), as ``person`` if given. The repository
    must answer at once (tests.syncrepository), so a Deferred result has fired when render_GET
    returns."""
    request = signed_in(DummyRequest(path), person)
    request.args = query or {}
    body = api.render_GET(request)  # type: ignore[arg-type]
    if body == 1:  # NOT_DONE_YET: written already
        body = b"".join(request.written)
    return request.responseCode or 200, json.loads(body)


def post_json(api: ApiResource, path: list[bytes], body: object, *,
              person: AgentSettings | None = None) -> tuple[int, Any]:
    """POST /api/<path> with ``body`` as JSON: (status, decoded body), as ``person`` if given."""
    request = signed_in(DummyRequest(path), person)
    request.method = b"POST"
    request.content = io.BytesIO(json.dumps(body).encode())
    body = api.render_POST(request)  # type: ignore[arg-type]
    if body == 1:  # NOT_DONE_YET: written already
        body = b"".join(request.written)
    return request.responseCode or 200, json.loads(body)
