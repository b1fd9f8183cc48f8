"""The sign-in guard in front of the daemon's HTTP port (docs/web-access.md).

:class:`SignInGuard` wraps the site's root resource. It reads the ``Authorization``
header, checks a person's password against their hash in ``var/secrets.yaml`` (read again
when the file changes; the read and scrypt run in a thread, never on the reactor) or the
host's API token, applies :func:`callcenter.web_access.refusal` to the path, and only then
hands the request to the page or API resource, with the signed-in :class:`Caller` on it
(:func:`caller_of`). The decisions live in :mod:`callcenter.web_access`; this module only
moves requests and Deferreds.
"""

from __future__ import annotations

import hmac
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from html import escape
from pathlib import Path
from typing import Any, Final

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.error import UnsupportedMethod
from twisted.web.resource import Resource, getChildForRequest
from twisted.web.server import NOT_DONE_YET, Request

from callcenter.secrets import FILE_NAME, read_web_passwords
from callcenter.settings import AgentSettings
from callcenter.web_access import (
    OPEN_PATHS,
    Caller,
    PasswordHashError,
    SignInError,
    SignInThrottle,
    VerifiedPasswords,
    client_address,
    cross_site_refusal,
    read_authorization,
    refusal,
)

__all__ = ["SIGN_OUT_PATH", "SignInGuard", "caller_of", "person_of"]

_log = Logger(namespace="callcenter.web")

RunBlocking = Callable[..., "Deferred[Any]"]
"""``run(f, *args)``: ``f(*args)`` in a thread, as a Deferred (tests: at once)."""

_CALLER: Final = "_callcenter_caller"
_REALM: Final = b'Basic realm="callcenter", charset="UTF-8"'
SIGN_OUT_PATH: Final = ("signout",)
"""``/signout``: answered 401 to everyone, which makes a browser forget the credentials."""
_TOKEN_USER: Final = "(API token)"
"""Wrong API tokens are throttled like wrong passwords of one more id."""


def caller_of(request: Any) -> Caller | None:
    """Who the guard signed ``request`` in as; None when it did not pass the guard (in-process tests)."""
    caller = getattr(request, _CALLER, None)
    return caller if isinstance(caller, Caller) else None


def person_of(request: Any) -> AgentSettings | None:
    """The person signed in for ``request``; None for the host's API token or without the guard."""
    caller = caller_of(request)
    return caller.person if caller is not None else None


class _PasswordFile:
    """``web:`` of secrets.yaml, read again only when the file changes (each write replaces it:
    a new inode, so two writes within one tick of the file system's clock are told apart)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self._state_dir = state_dir
        self._stamp: tuple[int, int, int] | None = None
        self._hashes: dict[str, str] = {}

    def hashes(self) -> dict[str, str]:
        """Blocking (stat, maybe read): call it in a thread."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._hashes = None, {}
            return self._hashes
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._hashes = read_web_passwords(self._state_dir)
            self._stamp = stamp
        return self._hashes


class SignInGuard(Resource):
    """Signs every request in before the site's resources see it (see the module docstring)."""

    isLeaf = True

    def __init__(self, site_root: Resource, people: Callable[[], Mapping[str, AgentSettings]], *,
                 api_token: str, state_dir: Path, run_blocking: RunBlocking,
                 on_refused: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, throttle: SignInThrottle | None = None) -> None:
        super().__init__()
        self.site_root = site_root
        self.clock = clock
        self.throttle = throttle or SignInThrottle()
        self._people = people
        self._api_token = api_token.encode()
        self._passwords = _PasswordFile(state_dir)
        self._verified = VerifiedPasswords()
        self._run = run_blocking
        self._on_refused = on_refused or (lambda reason: None)

    def render(self, request: Request) -> bytes | int:
        path = tuple(segment.decode("utf-8", "replace") for segment in request.postpath or [] if segment)
        if path in OPEN_PATHS:
            return self._serve(request)
        if path == SIGN_OUT_PATH:
            return self._signed_out(request)
        try:
            credentials = read_authorization(request.getHeader(b"authorization"))
        except SignInError as exc:
            return self._refuse(request, path, 401, str(exc))
        if credentials is None:
            return self._refuse(request, path, 401, "sign in with your agent id and web password")
        address = client_address(str(getattr(request.getClientAddress(), "host", "")),
                                 request.getHeader(b"x-forwarded-for"))
        user = _TOKEN_USER if credentials.token is not None else credentials.user or ""
        wait = self.throttle.locked(address, user, self.clock())
        if wait is not None:
            return self._locked(request, path, address, user, wait)
        if credentials.token is not None:
            if not hmac.compare_digest(credentials.token.encode(), self._api_token):
                return self._wrong(request, path, address, user, "wrong API token")
            return self._enter(request, path, Caller(person=None))
        assert credentials.user is not None and credentials.password is not None
        person = self._people().get(credentials.user)
        if person is None:
            return self._wrong(request, path, address, user, f"unknown id {credentials.user!r}")
        checking: Deferred[bool] = self._run(self._check, person.id, credentials.password)

        def checked(matched: bool) -> None:
            if getattr(request, "_disconnected", False) or request.finished:
                return
            if not matched:
                self._write(request, self._wrong(request, path, address, user, f"wrong password for {person.id}"))
                return
            self.throttle.succeeded(address, user)
            try:
                self._write(request, self._enter(request, path, Caller(person=person)))
            except UnsupportedMethod:
                self._write(request, self._refuse(request, path, 405, f"{request.method.decode()} is not supported here"))
            except Exception:  # noqa: BLE001 - the browser still gets an answer; logged
                _log.failure("web.request_failed method={method} path={path}", Failure(),
                             method=request.method.decode("ascii", "replace"), path="/" + "/".join(path))
                if not request.finished:
                    self._write(request, self._refuse(request, path, 500, "internal error"))

        def failed(failure: Failure) -> None:
            _log.failure("web.sign_in_failed person={person}", failure, person=person.id)
            if not request.finished and not getattr(request, "_disconnected", False):
                self._write(request, self._refuse(request, path, 500, "sign-in failed: see the daemon's log"))

        checking.addCallbacks(checked, failed)
        return NOT_DONE_YET

    @staticmethod
    def _signed_out(request: Request) -> bytes:
        """``/signout``: a 401 whatever the credentials. A browser drops the id and password it
        kept for the site when they are refused (HTTP Basic has no sign-out of its own), so the
        next page asks again: for the shared team-lead and management terminals."""
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", _REALM)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return (b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Signed out</title></head>'
                b"<body><h1>Signed out</h1><p>This browser no longer signs you in. If it asks for an id and "
                b"password now, cancel: the next person signs in on the "
                b'<a href="/">front page</a>.</p></body></html>')

    def _wrong(self, request: Request, path: tuple[str, ...], address: str, user: str, why: str) -> bytes:
        """A wrong sign-in: counted against the address (a lock may start), refused with 401."""
        started = self.throttle.failed(address, user, self.clock())
        if started is not None:
            _log.warn("web.sign_in_locked address={address} id={user} seconds={seconds:.0f}: too many wrong "
                      "sign-ins", address=address, user=user, seconds=started)
        reason = "wrong API token" if user == _TOKEN_USER else "wrong agent id or password"
        return self._refuse(request, path, 401, reason, log_as=f"{why} from {address}")

    def _locked(self, request: Request, path: tuple[str, ...], address: str, user: str, wait: float) -> bytes:
        seconds = max(1, math.ceil(wait))
        request.setHeader(b"retry-after", str(seconds).encode())
        return self._refuse(request, path, 429, f"too many wrong sign-ins from your address: try again in {seconds} s",
                            log_as=f"locked: {user} from {address} for {seconds} s more")

    def _check(self, person_id: str, password: str) -> bool:
        """In a thread: the person's stored hash, and whether ``password`` matches it."""
        stored = self._passwords.hashes().get(person_id)
        if stored is None:
            _log.warn("web.no_password person={person} (callcenter web password {person})", person=person_id)
            return False
        try:
            return self._verified.check(person_id, password, stored)
        except PasswordHashError as exc:
            _log.error("web.bad_hash file={file} key=web.{person} problem={problem}", file=str(self._passwords.path),
                       person=person_id, problem=str(exc))
            return False

    def _enter(self, request: Request, path: tuple[str, ...], caller: Caller) -> bytes | int:
        method = request.method.decode("ascii", "replace")
        reason = cross_site_refusal(method, request.getHeader(b"host"), request.getHeader(b"origin"),
                                    request.getHeader(b"referer")) or refusal(caller, self._people(), method, path)
        if reason is not None:
            return self._refuse(request, path, 403, reason)
        setattr(request, _CALLER, caller)
        return self._serve(request)

    def _serve(self, request: Request) -> bytes | int:
        resource = getChildForRequest(self.site_root, request)
        return resource.render(request)  # type: ignore[no-any-return]

    @staticmethod
    def _write(request: Request, body: bytes | int) -> None:
        if body is not NOT_DONE_YET and isinstance(body, bytes):
            request.write(body)
            request.finish()

    def _refuse(self, request: Request, path: tuple[str, ...], status: int, reason: str,
                log_as: str | None = None) -> bytes:
        where = "/" + "/".join(path)
        _log.warn("web.refused status={status} method={method} path={path} reason={reason}", status=status,
                  method=request.method.decode("ascii", "replace"), path=where, reason=log_as or reason)
        if status in (401, 403, 429):
            self._on_refused({401: "signin", 403: "forbidden", 429: "locked"}[status])
        request.setResponseCode(status)
        if status == 401:
            request.setHeader(b"www-authenticate", _REALM)
        if path[:1] == ("api",):
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            return json.dumps({"error": reason, "field": None}, ensure_ascii=False).encode("utf-8")
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        title = {401: "Sign in", 429: "Too many wrong sign-ins"}.get(status, "Not allowed")
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
                f"<body><h1>{title}</h1><p>{escape(reason)}</p>"
                '<p><a href="/">front page</a></p></body></html>').encode()
