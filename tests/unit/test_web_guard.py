"""The sign-in guard in front of the HTTP port (callcenter.web_guard), with the real API
resource on a real database (SQLite and PostgreSQL): no credentials, wrong ones, a person,
the host's token; the path rules; a person acting only as themselves; a password set,
reset and removed while the daemon runs."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.web.resource import Resource
from twisted.web.static import Data
from twisted.web.test.requesthelper import DummyRequest

from callcenter.http_api import ApiResource, PasswordPage
from callcenter.secrets import (
    load_or_create_secrets,
    read_web_passwords,
    set_web_password,
)
from callcenter.settings import load_settings
from callcenter.storage import repository as repo_fns
from callcenter.storage.records import NewCallRecord
from callcenter.web_access import hash_password
from callcenter.web_guard import SignInGuard
from tests.syncrepository import SyncRepository

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "config")


def run_at_once(f: Any, *args: Any) -> Any:
    return maybeDeferred(f, *args)


class Site:
    """The guard over a root like the daemon's: /api (the real API resource), /metrics, /wallboard."""

    def __init__(self, sessions: sessionmaker[Session], state_dir: Path) -> None:
        self.state_dir = state_dir
        self.secrets = load_or_create_secrets(state_dir, [a.id for a in SETTINGS.agents])
        root = Resource()
        root.putChild(b"api", ApiResource(SimpleNamespace(  # type: ignore[arg-type]
            repository=SyncRepository(sessions), settings=SETTINGS)))
        root.putChild(b"metrics", Data(b"callcenter_up 1\n", "text/plain"))
        root.putChild(b"wallboard", Data(b"<h1>wallboard</h1>", "text/html"))
        root.putChild(b"password", PasswordPage(state_dir, run_at_once))
        self.refused: list[str] = []
        self.now = 1000.0
        self.guard = SignInGuard(root, lambda: SETTINGS.people, api_token=self.secrets.api_token,
                                 state_dir=state_dir, run_blocking=run_at_once, on_refused=self.refused.append,
                                 clock=lambda: self.now)

    def request(self, method: str, path: str, *, user: str | None = None, password: str = "",
                token: str | None = None, body: object = None, form: dict[str, str] | None = None,
                origin: str | None = None, peer: str = "10.0.0.21",
                forwarded_for: str | None = None) -> tuple[int, dict[bytes, list[bytes]], bytes]:
        request = DummyRequest([segment.encode() for segment in path.strip("/").split("/")])
        request.method = method.encode()
        request.client = IPv4Address("TCP", peer, 50000)
        if forwarded_for is not None:
            request.requestHeaders.addRawHeader(b"x-forwarded-for", forwarded_for.encode())
        request.requestHeaders.addRawHeader(b"host", b"cc.example:8080")
        if origin is not None:
            request.requestHeaders.addRawHeader(b"origin", origin.encode())
        if form is not None:
            request.args = {k.encode(): [v.encode()] for k, v in form.items()}
        if user is not None:
            request.requestHeaders.addRawHeader(
                b"authorization", b"Basic " + base64.b64encode(f"{user}:{password}".encode()))
        if token is not None:
            request.requestHeaders.addRawHeader(b"authorization", f"Bearer {token}".encode())
        if body is not None:

            request.content = io.BytesIO(json.dumps(body).encode())
        result = self.guard.render(request)  # type: ignore[arg-type]
        written = result if isinstance(result, bytes) else b"".join(request.written)
        headers = dict(request.responseHeaders.getAllRawHeaders())
        return request.responseCode or 200, headers, written


def make_record(sessions: sessionmaker[Session], agent: str) -> str:
    with sessions() as session, session.begin():
        record = repo_fns.create_call_record(session, NewCallRecord(
            started_at=datetime(2026, 12, 6, 2, 0, tzinfo=UTC), direction="inbound", phone="13912345678",
            agent_id=agent, queue="hotline", outcome="answered"), site_prefix="GD")
    return record.ticket_number


def test_nothing_but_health_and_metrics_without_signing_in(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """No credentials: 401 asking for Basic sign-in, JSON under /api and a page elsewhere;
    Prometheus' scrape still works; a mangled header is named."""
    site = Site(sessions, tmp_path)
    status, headers, body = site.request("GET", "api/call-records")
    assert status == 401 and headers[b"WWW-Authenticate"] == [b'Basic realm="callcenter", charset="UTF-8"']
    assert json.loads(body) == {"error": "sign in with your agent id and web password", "field": None}
    status, headers, body = site.request("GET", "wallboard")
    assert status == 401 and b"<h1>Sign in</h1>" in body and headers[b"Content-Type"] == [b"text/html; charset=utf-8"]
    assert site.request("GET", "metrics")[2] == b"callcenter_up 1\n"
    status, _, body = site.request("GET", "api/queues", token="not-the-token")
    assert (status, json.loads(body)["error"]) == (401, "wrong API token")
    request_body = site.request("GET", "api/queues", user="2101", password="")  # no password set yet
    assert request_body[0] == 401
    assert site.refused == ["signin"] * 4


def test_a_person_signs_in_and_acts_only_as_themselves(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """2101 with their password: their disposition goes through with the writer filled in; naming
    someone else is 403 on the field; reports are for leads (403); a wrong password is 401."""
    site = Site(sessions, tmp_path)
    set_web_password(tmp_path, "2101", hash_password("2101 password"))
    set_web_password(tmp_path, "8001", hash_password("8001 password"))
    ticket = make_record(sessions, "2101")
    disposition = f"api/call-records/{ticket}/disposition"

    status, _, body = site.request("POST", disposition, user="2101", password="2101 password",
                                   body={"outcome": "resolved", "notes": "refund sent"})
    assert status == 200, body
    assert json.loads(body)["record"]["outcome"] == "resolved"
    status, _, body = site.request("POST", disposition, user="2101", password="2101 password",
                                   body={"agent": "8001", "outcome": "sale"})
    assert (status, json.loads(body)) == (403, {"error": "signed in as 2101: may not act as '8001'", "field": "agent"})
    status, _, body = site.request("POST", disposition, user="2101", password="wrong password")
    assert (status, json.loads(body)["error"]) == (401, "wrong agent id or password")
    status, _, body = site.request("GET", "api/reports/commission", user="2101", password="2101 password")
    assert (status, json.loads(body)["error"]) == (403, "2101 is an agent: /api/reports/commission is for team leads and managers")
    # the team's lead writes a note on the agent's call as themselves, and reads the record
    status, _, body = site.request("POST", disposition, user="8001", password="8001 password", body={"notes": "checked"})
    assert status == 200 and json.loads(body)["record"]["description"] == "checked"
    status, _, body = site.request("GET", f"api/call-records/{ticket}", user="8001", password="8001 password")
    assert status == 200 and json.loads(body)["ticket_number"] == ticket
    with sessions() as session:
        stored = repo_fns.get_call_record_by_ticket(session, ticket)
    assert stored is not None and (stored.outcome, stored.description) == ("resolved", "checked")
    assert site.refused == ["signin", "forbidden"]  # the guard's own; acting as another is the API's 403


def test_signing_out_refuses_the_credentials_so_the_browser_forgets_them(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """``/signout`` is a 401 with the sign-in challenge whoever asks, right password or none: a
    browser drops credentials that were refused (the shared terminals' sign-out). It is not
    counted as a refused sign-in, and the same password still signs in afterwards."""
    site = Site(sessions, tmp_path)
    set_web_password(tmp_path, "8001", hash_password("8001 password"))
    for credentials in ({"user": "8001", "password": "8001 password"}, {}):
        status, headers, body = site.request("GET", "signout", **credentials)  # type: ignore[arg-type]
        assert status == 401 and headers[b"WWW-Authenticate"] == [b'Basic realm="callcenter", charset="UTF-8"']
        assert b"<h1>Signed out</h1>" in body and headers[b"Cache-Control"] == [b"no-store"]
    assert site.refused == []
    assert site.request("GET", "wallboard", user="8001", password="8001 password")[0] == 200


def test_the_hosts_token_acts_for_whoever_it_names(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """The CLI on the daemon's host (`callcenter agent disposition --as ...`) presents the API token."""
    site = Site(sessions, tmp_path)
    ticket = make_record(sessions, "2102")
    status, _, body = site.request("POST", f"api/call-records/{ticket}/disposition", token=site.secrets.api_token,
                                   body={"agent": "2102", "outcome": "resolved"})
    assert status == 200, body
    status, _, body = site.request("POST", f"api/call-records/{ticket}/disposition", token=site.secrets.api_token,
                                   body={"outcome": "resolved"})
    assert (status, json.loads(body)["field"]) == (400, "agent")  # no one to fill in: the body must say who


def test_a_password_set_reset_or_removed_applies_at_once(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """`callcenter web password` rewrites secrets.yaml while the daemon runs: the guard reads it
    again, so the old password stops working and a removed one signs no one in."""
    site = Site(sessions, tmp_path)
    set_web_password(tmp_path, "9001", hash_password("first password"))
    assert site.request("GET", "wallboard", user="9001", password="first password")[0] == 200
    set_web_password(tmp_path, "9001", hash_password("second password"))
    assert site.request("GET", "wallboard", user="9001", password="first password")[0] == 401
    assert site.request("GET", "wallboard", user="9001", password="second password")[0] == 200
    set_web_password(tmp_path, "9001", None)
    assert site.request("GET", "wallboard", user="9001", password="second password")[0] == 401
    assert read_web_passwords(tmp_path) == {}
    secrets = load_or_create_secrets(tmp_path, [a.id for a in SETTINGS.agents])
    assert secrets == site.secrets  # setting passwords kept every other secret


def test_a_hand_edited_hash_signs_no_one_in(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    site = Site(sessions, tmp_path)
    set_web_password(tmp_path, "9001", "plaintext-password")
    assert site.request("GET", "wallboard", user="9001", password="plaintext-password")[0] == 401
    assert site.request("GET", "wallboard", user="nobody", password="x")[0] == 401


def test_a_person_changes_their_own_password(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """/password: the current one typed again, the new one twice; refused with the reason, or
    changed: the old password stops working at once. Another site's form may not do it."""
    site = Site(sessions, tmp_path)
    set_web_password(tmp_path, "2101", hash_password("first password"))
    status, _, page = site.request("GET", "password", user="2101", password="first password")
    assert status == 200 and b"Signed in as Agent 2101 (2101)" in page and b'name="repeat"' in page

    def change(current: str, new: str, repeat: str, origin: str | None = "http://cc.example:8080",
               password: str = "first password") -> tuple[int, dict[bytes, list[bytes]], bytes]:
        return site.request("POST", "password", user="2101", password=password, origin=origin,
                            form={"current": current, "new": new, "repeat": repeat})

    status, headers, _ = change("wrong password", "second password", "second password")
    assert status == 303 and b"err=the+current+password+is+not+right" in headers[b"Location"][0]
    status, headers, _ = change("first password", "second password", "second passwort")
    assert b"err=the+new+password+and+its+repetition+differ" in headers[b"Location"][0]
    status, headers, _ = change("first password", "short", "short")
    assert b"at+least+10+characters" in headers[b"Location"][0]
    status, _, body = change("first password", "evil password", "evil password", origin="https://evil.example")
    assert status == 403 and b"another site" in body
    status, headers, _ = change("first password", "second password", "second password")
    assert headers[b"Location"] == [b"/password?msg=password+changed%3A+sign+in+again+with+the+new+one"]
    assert site.request("GET", "password", user="2101", password="first password")[0] == 401
    assert site.request("GET", "password", user="2101", password="second password")[0] == 200
    status, _, page = site.request("GET", "password", token=site.secrets.api_token)
    assert status == 200 and b"callcenter web password ID" in page


def test_wrong_passwords_lock_the_guesser_not_the_person(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """Five wrong passwords for 2101 from one address: 429 with Retry-After for 5 minutes, even
    with the right password (nothing is checked); 2101 at their own desk still signs in; after
    the lock the right password works. Behind a reverse proxy on the host the guesser is told
    apart by X-Forwarded-For; wrong API tokens are throttled too."""
    site = Site(sessions, tmp_path)
    set_web_password(tmp_path, "2101", hash_password("2101 password"))
    for _ in range(5):
        assert site.request("GET", "api/queues", user="2101", password="guess", peer="10.0.0.66")[0] == 401
    status, headers, body = site.request("GET", "api/queues", user="2101", password="2101 password",
                                         peer="10.0.0.66")
    assert (status, headers[b"Retry-After"]) == (429, [b"300"])
    assert json.loads(body) == {"error": "too many wrong sign-ins from your address: try again in 300 s",
                                "field": None}
    assert site.request("GET", "wallboard", user="2101", password="2101 password", peer="10.0.0.21")[0] == 200
    site.now += 300.0
    assert site.request("GET", "wallboard", user="2101", password="2101 password", peer="10.0.0.66")[0] == 200
    assert site.refused == ["signin"] * 5 + ["locked"]
    # a proxy on the host: each client by its forwarded address
    for _ in range(5):
        site.request("GET", "wallboard", user="2101", password="guess", peer="127.0.0.1", forwarded_for="10.0.0.77")
    status, _, body = site.request("GET", "wallboard", user="2101", password="2101 password", peer="127.0.0.1",
                                   forwarded_for="10.0.0.77")
    assert status == 429 and b"<h1>Too many wrong sign-ins</h1>" in body
    assert site.request("GET", "wallboard", user="2101", password="2101 password", peer="127.0.0.1",
                        forwarded_for="10.0.0.21")[0] == 200
    for _ in range(5):
        site.request("GET", "api/queues", token="not-the-token", peer="10.0.0.88")
    assert site.request("GET", "api/queues", token=site.secrets.api_token, peer="10.0.0.88")[0] == 429
