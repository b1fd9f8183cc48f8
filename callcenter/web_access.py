"""Who may open what on the daemon's HTTP port: sign-in and the access rules (pure).

Every request from the network passes the sign-in guard (:mod:`callcenter.web_guard`,
docs/web-access.md). A person signs in with their agent id and web password (HTTP Basic;
passwords are set with ``callcenter web password ID`` and kept as scrypt hashes in
``var/secrets.yaml``); the CLI on the daemon's host presents the install's API token
(``Authorization: Bearer``), read from the same 0600 file, and may act for anyone, as the
host's operator may anyway.

This module holds the decisions, with no I/O: the password hash, reading the
``Authorization`` header, which pages and routes a person may open (:func:`refusal`) and
which body field names who is acting (:func:`actor_field`), so that a person can act only
as themselves. The existing rules of each action (who oversees whom, who hands out, who
scores) then apply to the signed-in person.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets as _random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from callcenter.settings import AgentSettings

__all__ = [
    "OPEN_PATHS", "Caller", "Credentials", "PasswordHashError", "SignInError", "SignInThrottle",
    "VerifiedPasswords", "actor_field", "actor_refusal", "check_password", "client_address", "cross_site_refusal",
    "hash_password", "host_file_refusal", "new_password", "numbers_masked", "password_change_problem",
    "password_problem", "read_authorization", "refusal", "vip_number_locked", "vip_refusal",
]

SCHEME: Final = "scrypt"
#: scrypt's cost: about 40 ms and 16 MiB per hash on the development VM. The guard hashes a
#: person's password once per daemon run (:class:`VerifiedPasswords`), never per request.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
MIN_PASSWORD_LENGTH: Final = 10

#: Paths anyone may open without signing in: a health check and Prometheus' scrape, which
#: carry no callers' or agents' data.
OPEN_PATHS: Final = (("api", "health"), ("metrics",))

#: Roles that see everyone's work: the reports, the call records, the dialer and SMS lists.
STAFF_ROLES: Final = ("lead", "manager")


class PasswordHashError(ValueError):
    """A stored password hash this module did not write (a hand edit of secrets.yaml)."""


class SignInError(ValueError):
    """An ``Authorization`` header that cannot be read, with what is wrong with it."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=128 * r * (n + p + 2) + 1024 * 1024)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$<salt>$<hash>`` (base64) of ``password``, with a new random salt."""
    salt = _random.token_bytes(16) if salt is None else salt
    digest = _scrypt(password, salt, _N, _R, _P, _DKLEN)
    return f"{SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def check_password(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` (a :func:`hash_password` result) was made from.

    Raises :class:`PasswordHashError` when ``stored`` is not such a hash.
    """
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise PasswordHashError(f"expected scrypt$N$r$p$salt$hash, got {stored[:20]!r}...")
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        raise PasswordHashError(f"unreadable scrypt parameters in {stored[:20]!r}...") from None
    if not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16 and 16 <= len(digest) <= 64):
        raise PasswordHashError(f"scrypt parameters out of range: N={n} r={r} p={p}")
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(digest)), digest)


def new_password() -> str:
    """A random password to hand a person (16 characters, URL-safe)."""
    return _random.token_urlsafe(12)


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be set, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password has at least {MIN_PASSWORD_LENGTH} characters, got {len(password)}"
    if password != password.strip():
        return "a password may not start or end with a space"
    if any(ord(c) < 32 for c in password):
        return "a password may not contain control characters"
    return None


def password_change_problem(current_matches: bool, new: str, repeat: str, current: str) -> str | None:
    """Why a person's own password change is refused, or None (``current_matches``: their
    current password, typed again, is right)."""
    if not current_matches:
        return "the current password is not right"
    if new != repeat:
        return "the new password and its repetition differ"
    if new == current:
        return "the new password is the current one"
    return password_problem(new)


def cross_site_refusal(method: str, host: bytes | None, origin: bytes | None, referer: bytes | None) -> str | None:
    """Why a request that changes something is refused as coming from another site, or None.

    A browser sends its remembered Basic credentials with any request to this host, also
    a form posted by another site's page (cross-site request forgery). Browsers say where a
    request comes from (``Origin``, else ``Referer``); a POST whose origin is not this host
    is refused. Requests without either header (the CLI, scripts) are not browsers' and pass.
    """
    if method in ("GET", "HEAD", "OPTIONS"):
        return None
    source = origin if origin is not None else referer
    if source is None:
        return None
    text = source.decode("ascii", "replace").strip()
    if text == "null":
        return "a request from an opaque origin (a sandboxed page or a file) may not change anything here"
    scheme, _, rest = text.partition("://")
    where = rest.split("/", 1)[0]
    if not scheme or host is None or where.lower() != host.decode("ascii", "replace").strip().lower():
        return f"a request from another site ({text[:80]}) may not change anything here"
    return None


@dataclass(frozen=True)
class Credentials:
    """What an ``Authorization`` header presents: a person's id and password, or a token."""

    user: str | None = None
    password: str | None = None
    token: str | None = None


def read_authorization(header: bytes | None) -> Credentials | None:
    """The credentials of an ``Authorization`` header (None when there is none).

    ``Basic base64(id:password)`` (UTF-8) or ``Bearer <token>``; anything else raises
    :class:`SignInError` saying what is wrong.
    """
    if header is None or not header.strip():
        return None
    scheme, _, value = header.strip().partition(b" ")
    value = value.strip()
    if scheme.lower() == b"bearer":
        if not value:
            raise SignInError("Authorization: Bearer without a token")
        return Credentials(token=value.decode("ascii", "replace"))
    if scheme.lower() != b"basic":
        raise SignInError(f"Authorization: expected Basic or Bearer, got {scheme[:20].decode('ascii', 'replace')!r}")
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise SignInError("Authorization: Basic credentials are not base64 of UTF-8 'id:password'") from None
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        raise SignInError("Authorization: Basic credentials must be 'id:password'")
    return Credentials(user=user, password=password)


class VerifiedPasswords:
    """The passwords already checked against their stored hash in this daemon run.

    scrypt is slow on purpose (~40 ms); the pages reload every few seconds. A password
    that matched is remembered as a keyed digest (never the password itself) together with
    the hash it matched, so a changed or removed password is checked again.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = _random.token_bytes(32) if key is None else key
        self._matched: dict[str, tuple[str, bytes]] = {}

    def _digest(self, user: str, password: str) -> bytes:
        return hmac.new(self._key, f"{user}\0{password}".encode(), "sha256").digest()

    def known(self, user: str, password: str, stored: str) -> bool:
        """Whether this exact password already matched ``stored`` for ``user``."""
        seen = self._matched.get(user)
        return seen is not None and seen[0] == stored and hmac.compare_digest(seen[1], self._digest(user, password))

    def check(self, user: str, password: str, stored: str) -> bool:
        """Whether ``password`` is ``user``'s (``stored``): from memory, or by scrypt (slow)."""
        if self.known(user, password, stored):
            return True
        if check_password(stored, password):
            self._matched[user] = (stored, self._digest(user, password))
            return True
        return False


def client_address(peer: str, forwarded_for: bytes | None) -> str:
    """The address a request comes from: the TCP peer, or, when the peer is this host (a
    reverse proxy on it, which terminates TLS), the last address the proxy added to
    ``X-Forwarded-For``. A client elsewhere cannot set it for itself: its own header is
    ignored, its connection is not from this host."""
    try:
        local = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        local = False
    if local and forwarded_for:
        last = forwarded_for.decode("latin-1").split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return peer
    return peer


class SignInThrottle:
    """Wrong passwords slow a guesser down: counted per address and id, and per address.

    ``max_failures`` wrong sign-ins for one id from one address within ``window`` seconds
    lock that pair for ``lock_seconds``; ``max_address_failures`` from one address for any
    ids (trying ids one after another) lock the address for ``address_lock_seconds``.
    While locked every sign-in is refused before its password is checked (so a guess,
    right or wrong, tells nothing and costs no scrypt). A successful sign-in forgets the
    pair's failures. Nothing is counted per id alone: a wrong guess from elsewhere never
    locks the person out of their own browser. At most ``max_keys`` addresses and pairs
    are remembered (the oldest are forgotten first). The clock is the caller's.
    """

    def __init__(self, *, max_failures: int = 5, max_address_failures: int = 30, window: float = 900.0,
                 lock_seconds: float = 300.0, address_lock_seconds: float = 900.0, max_keys: int = 10_000) -> None:
        self.max_failures = max_failures
        self.max_address_failures = max_address_failures
        self.window = window
        self.lock_seconds = lock_seconds
        self.address_lock_seconds = address_lock_seconds
        self.max_keys = max_keys
        self._failures: dict[tuple[str, str | None], deque[float]] = {}
        self._locked: dict[tuple[str, str | None], float] = {}

    def locked(self, address: str, user: str, now: float) -> float | None:
        """Seconds until ``user`` may try again from ``address``; None when not locked."""
        until = max(self._locked.get((address, user), 0.0), self._locked.get((address, None), 0.0))
        return until - now if until > now else None

    def failed(self, address: str, user: str, now: float) -> float | None:
        """Count a wrong sign-in; the lock's length in seconds when this one starts a lock."""
        started = None
        for key, limit, length in (((address, user), self.max_failures, self.lock_seconds),
                                   ((address, None), self.max_address_failures, self.address_lock_seconds)):
            times = self._failures.pop(key, None) or deque()
            self._failures[key] = times  # re-inserted: the most recently failed are forgotten last
            times.append(now)
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= limit:
                times.clear()
                self._locked[key] = now + length
                started = max(started or 0.0, length)
        for table in (self._failures, self._locked):
            while len(table) > self.max_keys:
                del table[next(iter(table))]
        return started

    def succeeded(self, address: str, user: str) -> None:
        """A right password: the pair's earlier failures no longer count."""
        self._failures.pop((address, user), None)


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: a signed-in person, or the host (the API token: the CLI)."""

    person: AgentSettings | None

    @property
    def is_host(self) -> bool:
        return self.person is None

    def __str__(self) -> str:
        return "the host's API token" if self.person is None else self.person.id


def _is_staff(person: AgentSettings) -> bool:
    return person.role in STAFF_ROLES


def numbers_masked(caller: Caller | None, mask_for_agents: bool) -> bool:
    """Are customers' numbers shown masked to ``caller`` (:mod:`callcenter.privacy`)? For an
    agent signed in, when ``privacy.agent_numbers`` is ``masked`` (``mask_for_agents``); team
    leads, managers and the host's API token see them whole."""
    return mask_for_agents and caller is not None and caller.person is not None and not _is_staff(caller.person)


def _for_agent(person: AgentSettings, people: Mapping[str, AgentSettings], agent_id: str, *,
               overseers: bool) -> str | None:
    """``person`` may reach ``agent_id``'s page or routes: it is them, or (``overseers``) they oversee them."""
    if person.id == agent_id:
        return None
    target = people.get(agent_id)
    if overseers and (target is not None and person.oversees(target.team)
                      or target is None and _is_staff(person)):  # staff get the page's own "unknown agent"
        return None
    if overseers:
        return f"{person.id} may open only their own agent page, or their team's as its lead"
    return f"{person.id} may act only as themselves here, not as {agent_id}"


#: Routes under /api an agent may use besides their own /api/agents/<id>/...: the live
#: queues, the agents list, a disposition, texting a caller the ticket, sending a fax. The
#: action's own rules then apply (a disposition's writer must have taken the call or
#: oversee who did).
_AGENT_ROUTES: Final = (("GET", ("queues",)), ("GET", ("agents",)), ("POST", ("faxes",)))
_AGENT_RECORD_ACTIONS: Final = ("disposition", "sms")
#: Agent actions an overseer may take for one of their agents (a supervisor's forced log
#: out or pause); the preview dialing actions are the agent's own.
_OVERSEEN_ACTIONS: Final = ("login", "logout", "pause", "unpause", "screen-pop", "follow-ups")


def refusal(caller: Caller, people: Mapping[str, AgentSettings], method: str, path: Sequence[str]) -> str | None:
    """Why ``caller`` may not ``method`` ``path`` (the URL's segments, decoded), or None.

    - the host's token: everything;
    - anyone signed in: the front page, the wallboard and changing their own password;
    - ``/agent/<id>``: the agent; a page's GET also their team's lead and the managers;
    - ``/lead/<id>``: that person; a GET also the managers;
    - ``/api/agents/<id>/<action>``: the agent; log in, out, pause and the screen pop
      also whoever oversees them;
    - agents also: the live queues, the agents list, a disposition, texting a caller the
      ticket, sending a fax, the CRM's customers (looking up, adding, editing);
    - everything else (reports, call records, the dialer, SMS lists, QA): team leads and
      managers; whose action it is, and whether they may take it, is the route's own rule.
    """
    person = caller.person
    if person is None:
        return None
    segments = tuple(segment for segment in path if segment)
    if any(segment in (".", "..") for segment in segments):
        return "a path with . or .. segments is not a page here"
    if not segments or segments in (("wallboard",), ("password",)):
        return None
    head, rest = segments[0], segments[1:]
    if head == "agent":
        if not rest:
            return None  # the page's own "which agent?" answer
        return _for_agent(person, people, rest[0], overseers=method == "GET")
    if head == "lead":
        if not rest or rest[0] == person.id or method == "GET" and person.role == "manager":
            return None
        return f"{person.id} may open only their own lead page"
    if head == "api":
        if len(rest) >= 3 and rest[0] == "agents":
            return _for_agent(person, people, rest[1], overseers=rest[2] in _OVERSEEN_ACTIONS)
        if (method, rest) in _AGENT_ROUTES:
            return None
        if rest[:1] == ("customers",) and len(rest) <= 2:
            return None  # the CRM: agents keep their callers' records (VIP aside: vip_refusal)
        if method == "POST" and len(rest) == 3 and rest[0] == "call-records" and rest[2] in _AGENT_RECORD_ACTIONS:
            return None
    if _is_staff(person):
        return None
    return f"{person.id} is an agent: /{'/'.join(segments)} is for team leads and managers"


def vip_refusal(caller: Caller | None, path: Sequence[str], body: Mapping[str, object]) -> str | None:
    """Why ``caller`` may not send ``body`` to the CRM's ``path`` (below /api), or None.

    Agents add and edit customers; marking one VIP (their own greeting and a place ahead in
    the hotline queue) is for team leads and managers.
    """
    segments = tuple(segment for segment in path if segment)
    if caller is None or caller.person is None or segments[:1] != ("customers",) or "vip" not in body:
        return None
    if _is_staff(caller.person):
        return None
    return f"{caller.person.id} is an agent: marking a customer VIP is for team leads and managers"


def vip_number_locked(caller: Caller | None) -> bool:
    """Is ``caller`` an agent signed in, who may edit customers but not move a VIP's
    treatment to another line by changing its number (:func:`vip_refusal`'s rule)?"""
    return caller is not None and caller.person is not None and not _is_staff(caller.person)


def host_file_refusal(caller: Caller | None, path: Sequence[str], body: Mapping[str, object]) -> str | None:
    """Why ``caller`` may not name a file on the daemon's host in ``body`` (a fax's ``file``,
    below /api), or None.

    A path is read by the daemon with its own rights: only the host's API token (the CLI, run
    on that host by whoever may read it) gives one. People signed in send the pages
    themselves (a fax's ``tiff``, base64), or could send any file the daemon can read
    (received faxes, recordings) and tell which files exist from the errors.
    """
    segments = tuple(segment for segment in path if segment)
    if caller is None or caller.person is None or segments != ("faxes",) or "file" not in body:
        return None
    return (f"{caller.person.id} is signed in: a file on the daemon's host is for the host's API token (the CLI); "
            "send the pages themselves in tiff (base64)")


def actor_field(method: str, path: Sequence[str]) -> str | None:
    """The body field of an API route that names who is acting, or None (``path`` below /api)."""
    segments = tuple(segment for segment in path if segment)
    if method != "POST":
        return "reviewer" if segments == ("qa", "sample") else None
    if len(segments) == 3 and segments[0] == "call-records":
        return {"disposition": "agent", "qa": "reviewer", "sms": "by"}.get(segments[2])
    if segments == ("sms", "broadcasts"):
        return "by"
    if len(segments) == 3 and segments[0] == "dialer" and segments[2] in ("handout", "takeback"):
        return "by"
    if segments == ("supervisor", "spy"):
        return "supervisor"
    return None


def actor_refusal(caller: Caller, claimed: object) -> str | None:
    """Why ``caller`` may not act as ``claimed`` (a body's actor field), or None.

    A person acts only as themselves; the host's token (the CLI on the daemon's host)
    acts for whoever the command names.
    """
    if caller.person is None or claimed == caller.person.id:
        return None
    return f"signed in as {caller.person.id}: may not act as {claimed!r}"
