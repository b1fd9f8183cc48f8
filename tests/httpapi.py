"""Requests to the JSON API resource in unit tests (no server): GET and POST, decoded."""

from __future__ import annotations

import io
import json
from typing import Any

from twisted.web.test.requesthelper import DummyRequest

from callcenter.http_api import ApiResource

__all__ = ["get_json", "post_json"]


def get_json(api: ApiResource, path: list[bytes], query: dict[bytes, list[bytes]] | None = None) -> tuple[int, Any]:
    """GET /api/<path>?<query>: (status, decoded body). The repository must answer at once
    (tests.syncrepository), so a Deferred result has fired when render_GET returns."""
    request = DummyRequest(path)
    request.args = query or {}
    body = api.render_GET(request)  # type: ignore[arg-type]
    if body == 1:  # NOT_DONE_YET: written already
        body = b"".join(request.written)
    return request.responseCode or 200, json.loads(body)


def post_json(api: ApiResource, path: list[bytes], body: object) -> tuple[int, Any]:
    """POST /api/<path> with ``body`` as JSON: (status, decoded body)."""
    request = DummyRequest(path)
    request.method = b"POST"
    request.content = io.BytesIO(json.dumps(body).encode())
    api.render_POST(request)  # type: ignore[arg-type]
    return request.responseCode or 200, json.loads(b"".join(request.written))
