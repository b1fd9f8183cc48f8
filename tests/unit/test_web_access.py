"""Sign-in and access rules of the HTTP port (callcenter.web_access, pure): password hashes,
the Authorization header, who may open which page or route, and who a person may act as."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from callcenter.settings import load_settings
from callcenter.web_access import (
    Caller,
    Credentials,
    PasswordHashError,
    SignInError,
    SignInThrottle,
    VerifiedPasswords,
    actor_field,
    actor_refusal,
    check_password,
    client_address,
    hash_password,
    new_password,
    password_problem,
    read_authorization,
    refusal,
)

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "config")
PEOPLE = SETTINGS.people
AGENT, OTHER_AGENT, TEAM2_AGENT = PEOPLE["2101"], PEOPLE["2102"], PEOPLE["2201"]
LEAD, MANAGER = PEOPLE["8001"], PEOPLE["9001"]


def as_(person: object) -> Caller:
    return Caller(person=person)  # type: ignore[arg-type]


def test_a_password_matches_its_hash_only() -> None:
    """The stored form is scrypt with a random salt: the same password hashes differently twice,
    both match it, nothing else does, and the password itself is not in the hash."""
    first, second = hash_password("correct horse 1"), hash_password("correct horse 1")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert "correct horse" not in first
    assert check_password(first, "correct horse 1") and check_password(second, "correct horse 1")
    assert not check_password(first, "correct horse 2")
    assert not check_password(first, "")


@pytest.mark.parametrize("stored", ["plaintext", "scrypt$16384$8$1$@@@$AAAA", "scrypt$3$8$1$AAAAAAAAAAAAAAAAAAAAAA==$"
                                    + "A" * 44, "md5$1$2$3$4$5"])
def test_a_hash_not_written_here_is_an_error_not_a_mismatch(stored: str) -> None:
    """A hand-edited secrets.yaml is reported (the guard logs it with the file and person), not
    silently treated as a wrong password or, worse, as a match."""
    with pytest.raises(PasswordHashError):
        check_password(stored, "whatever")


def test_new_passwords_are_random_and_long_enough() -> None:
    made = {new_password() for _ in range(50)}
    assert len(made) == 50 and all(password_problem(p) is None for p in made)
    assert "at least 10 characters" in (password_problem("short") or "")
    assert "space" in (password_problem(" leading spaces") or "")
    assert "control" in (password_problem("tab\there and there") or "")


def test_the_authorization_header_read_or_named_wrong() -> None:
    basic = b"Basic " + base64.b64encode("2101:pass:with:colons 密码".encode())
    assert read_authorization(basic) == Credentials(user="2101", password="pass:with:colons 密码")
    assert read_authorization(b"bearer abc123") == Credentials(token="abc123")
    assert read_authorization(None) is None and read_authorization(b"  ") is None
    for header, words in [(b"Digest x=1", "expected Basic or Bearer"), (b"Basic !!!", "not base64"),
                          (b"Basic " + base64.b64encode(b"no-colon"), "'id:password'"),
                          (b"Basic " + base64.b64encode(b":pw"), "'id:password'"), (b"Bearer", "without a token")]:
        with pytest.raises(SignInError, match=words):
            read_authorization(header)


def test_verified_passwords_skip_scrypt_until_the_hash_changes() -> None:
    """A person's page reloads every 3 s: the password is checked by scrypt once, then known;
    a new hash (password reset) must be checked again, and a wrong password is never known."""
    stored = hash_password("first password")
    verified = VerifiedPasswords()
    assert not verified.known("2101", "first password", stored)
    assert verified.check("2101", "first password", stored)
    assert verified.known("2101", "first password", stored)
    assert not verified.known("2101", "other password", stored)
    assert not verified.check("2101", "other password", stored)
    reset = hash_password("second password")
    assert not verified.known("2101", "first password", reset)
    assert not verified.check("2101", "first password", reset)
    assert verified.check("2101", "second password", reset)
    assert not verified.known("2102", "second password", reset)  # per person


@pytest.mark.parametrize(("who", "method", "path", "allowed"), [
    # everyone signed in: the front page and the wallboard
    (AGENT, "GET", [], True), (AGENT, "GET", ["wallboard"], True),
    # an agent's own page and routes; not another agent's
    (AGENT, "GET", ["agent", "2101"], True), (AGENT, "POST", ["agent", "2101"], True),
    (AGENT, "GET", ["agent", "2102"], False), (AGENT, "POST", ["api", "agents", "2102", "pause"], False),
    (AGENT, "POST", ["api", "agents", "2101", "pause"], True), (AGENT, "GET", ["api", "agents", "2101", "screen-pop"], True),
    # a team lead sees their agents' pages and may log them out; not act on the page or dial for them
    (LEAD, "GET", ["agent", "2101"], True), (LEAD, "POST", ["agent", "2101"], False),
    (LEAD, "GET", ["agent", "2201"], False), (LEAD, "POST", ["api", "agents", "2101", "logout"], True),
    (LEAD, "POST", ["api", "agents", "2201", "logout"], False), (LEAD, "POST", ["api", "agents", "2101", "dial"], False),
    (AGENT, "POST", ["api", "agents", "2101", "call"], True), (LEAD, "POST", ["api", "agents", "2101", "call"], False),
    (MANAGER, "POST", ["api", "agents", "2101", "call"], False),  # nobody calls on another's phone
    (MANAGER, "GET", ["agent", "2201"], True), (MANAGER, "POST", ["api", "agents", "2201", "logout"], True),
    (MANAGER, "GET", ["agent", "7777"], True),  # staff get the page's own "unknown agent"
    (AGENT, "GET", ["agent", "7777"], False),
    # lead pages: one's own; managers may look at a lead's
    (LEAD, "GET", ["lead", "8001"], True), (LEAD, "POST", ["lead", "8001"], True),
    (LEAD, "GET", ["lead", "8002"], False), (AGENT, "GET", ["lead", "8001"], False),
    (MANAGER, "GET", ["lead", "8001"], True), (MANAGER, "POST", ["lead", "8001"], False),
    (LEAD, "GET", ["lead", "8001", "recording", "GD20261206001"], True),
    # agents: the queues, a disposition, the ticket text, a fax; not reports, records, dialer, SMS lists, QA
    (AGENT, "GET", ["api", "queues"], True), (AGENT, "POST", ["api", "call-records", "GD1", "disposition"], True),
    (AGENT, "POST", ["api", "call-records", "GD1", "sms"], True), (AGENT, "POST", ["api", "faxes"], True),
    (AGENT, "GET", ["api", "faxes"], False), (AGENT, "GET", ["reports"], False),
    (AGENT, "GET", ["api", "reports", "commission"], False), (AGENT, "GET", ["api", "call-records", "GD1"], False),
    (AGENT, "GET", ["api", "dialer"], False), (AGENT, "POST", ["api", "call-records", "GD1", "qa"], False),
    (AGENT, "POST", ["api", "sms", "broadcasts"], False), (AGENT, "POST", ["api", "supervisor", "spy"], False),
    (AGENT, "GET", ["api", "nothing-here"], False),
    (LEAD, "GET", ["reports"], True), (LEAD, "GET", ["api", "reports", "calls"], True),
    (LEAD, "POST", ["api", "supervisor", "spy"], True), (LEAD, "POST", ["api", "dialer", "c", "handout"], True),
    # dot segments never pass (each resource reads its own segments; none may be smuggled past the rule)
    (AGENT, "GET", ["api", "agents", "2101", "..", "..", "reports", "calls"], False),
    (MANAGER, "GET", ["agent", ".", "2201"], False),
    # the host's API token: everything
    (None, "POST", ["lead", "8001"], True), (None, "GET", ["api", "reports", "commission"], True),
])
def test_who_may_open_what(who: object, method: str, path: list[str], allowed: bool) -> None:
    reason = refusal(as_(who), PEOPLE, method, path)
    assert (reason is None) == allowed, reason


def test_a_refusal_says_who_and_why() -> None:
    assert refusal(as_(AGENT), PEOPLE, "GET", ["agent", "2102"]) == (
        "2101 may open only their own agent page, or their team's as its lead")
    assert refusal(as_(LEAD), PEOPLE, "POST", ["agent", "2101"]) == "8001 may act only as themselves here, not as 2101"
    assert refusal(as_(AGENT), PEOPLE, "GET", ["api", "reports", "calls"]) == (
        "2101 is an agent: /api/reports/calls is for team leads and managers")


def test_every_acting_route_names_its_actor_field() -> None:
    """The routes whose body says who acts: a person may fill them only with themselves."""
    assert actor_field("POST", ["call-records", "GD1", "disposition"]) == "agent"
    assert actor_field("POST", ["call-records", "GD1", "qa"]) == "reviewer"
    assert actor_field("POST", ["call-records", "GD1", "sms"]) == "by"
    assert actor_field("POST", ["sms", "broadcasts"]) == "by"
    assert actor_field("POST", ["dialer", "spring", "handout"]) == "by"
    assert actor_field("POST", ["dialer", "spring", "takeback"]) == "by"
    assert actor_field("POST", ["supervisor", "spy"]) == "supervisor"
    assert actor_field("GET", ["qa", "sample"]) == "reviewer"
    assert actor_field("POST", ["faxes"]) is None and actor_field("GET", ["call-records"]) is None
    assert actor_refusal(as_(LEAD), "8001") is None
    assert actor_refusal(as_(LEAD), "9001") == "signed in as 8001: may not act as '9001'"
    assert actor_refusal(Caller(person=None), "9001") is None  # the CLI on the host


def test_a_post_from_another_site_is_refused_not_one_from_here_or_a_script() -> None:
    """Basic credentials ride along with any request a browser makes to this host: a form
    posted by another site's page must not act for the signed-in person."""
    from callcenter.web_access import cross_site_refusal

    host = b"cc.example:8080"
    assert cross_site_refusal("POST", host, b"http://cc.example:8080", None) is None
    assert cross_site_refusal("POST", host, None, b"http://CC.example:8080/lead/8001?team=team1") is None
    assert cross_site_refusal("POST", host, None, None) is None  # the CLI, curl: not a browser
    assert cross_site_refusal("GET", host, b"https://evil.example", None) is None  # reading changes nothing
    assert cross_site_refusal("POST", host, b"https://evil.example", b"http://cc.example:8080/") == (
        "a request from another site (https://evil.example) may not change anything here")
    assert "another site" in (cross_site_refusal("POST", host, None, b"http://cc.example:9999/x") or "")
    assert "opaque origin" in (cross_site_refusal("POST", host, b"null", None) or "")


def test_changing_ones_own_password() -> None:
    from callcenter.web_access import password_change_problem

    assert password_change_problem(True, "a new password", "a new password", "the old one") is None
    assert password_change_problem(False, "a new password", "a new password", "x") == "the current password is not right"
    assert password_change_problem(True, "a new password", "a new passwort", "x") == (
        "the new password and its repetition differ")
    assert password_change_problem(True, "same password", "same password", "same password") == (
        "the new password is the current one")
    assert "at least 10 characters" in (password_change_problem(True, "short", "short", "x") or "")


def test_five_wrong_passwords_for_one_id_from_one_address_lock_that_pair_for_five_minutes() -> None:
    """The 5th failure within 15 minutes starts a 300 s lock of (address, id), refused right or
    wrong; other ids from that address and the id from another address are not locked."""
    throttle = SignInThrottle()
    for i in range(4):
        assert throttle.failed("10.0.0.9", "2101", 100.0 + i) is None
        assert throttle.locked("10.0.0.9", "2101", 100.0 + i) is None
    assert throttle.failed("10.0.0.9", "2101", 104.0) == 300.0
    assert throttle.locked("10.0.0.9", "2101", 104.0) == 300.0
    assert throttle.locked("10.0.0.9", "2101", 403.0) == pytest.approx(1.0)
    assert throttle.locked("10.0.0.9", "2101", 404.0) is None
    assert throttle.locked("10.0.0.9", "2102", 200.0) is None
    assert throttle.locked("10.0.0.7", "2101", 200.0) is None  # the agent's own browser elsewhere


def test_failures_older_than_the_window_and_before_a_success_do_not_count() -> None:
    throttle = SignInThrottle()
    for t in (0.0, 1.0, 2.0, 3.0):
        throttle.failed("10.0.0.9", "2101", t)
    assert throttle.failed("10.0.0.9", "2101", 901.0) is None  # the first two fell out of the 900 s window
    throttle.succeeded("10.0.0.9", "2101")
    for t in (902.0, 903.0, 904.0, 905.0):
        assert throttle.failed("10.0.0.9", "2101", t) is None
    assert throttle.failed("10.0.0.9", "2101", 906.0) == 300.0


def test_trying_many_ids_from_one_address_locks_the_address() -> None:
    """30 wrong sign-ins for 30 different ids: the address is locked 900 s for every id."""
    throttle = SignInThrottle()
    started = [throttle.failed("10.0.0.9", f"{2000 + i}", float(i)) for i in range(30)]
    assert started == [None] * 29 + [900.0]
    assert throttle.locked("10.0.0.9", "9001", 30.0) == pytest.approx(899.0)
    assert throttle.locked("10.0.0.8", "9001", 30.0) is None


def test_the_throttle_remembers_a_bounded_number_of_addresses() -> None:
    throttle = SignInThrottle(max_keys=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 250}.{i % 250}", "2101", float(i))
    assert len(throttle._failures) <= 100 and len(throttle._locked) <= 100
    assert throttle.failed("10.0.3.249", "2101", 1000.0) is None  # the latest are kept: 2 failures now


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("10.0.0.9", None, "10.0.0.9"),
    ("10.0.0.9", b"1.2.3.4", "10.0.0.9"),              # a client elsewhere cannot claim another address
    ("127.0.0.1", b"10.0.0.9", "10.0.0.9"),            # a reverse proxy on this host
    ("127.0.0.1", b"6.6.6.6, 10.0.0.9", "10.0.0.9"),   # the proxy's own hop is the last one
    ("::1", b"fe80::1", "fe80::1"),
    ("127.0.0.1", b"not an address", "127.0.0.1"),
    ("127.0.0.1", None, "127.0.0.1"),
])
def test_client_address_trusts_forwarded_for_only_from_a_proxy_on_this_host(
        peer: str, forwarded: bytes | None, expected: str) -> None:
    assert client_address(peer, forwarded) == expected
