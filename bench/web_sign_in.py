"""Sign-in cost per request: the guard with its memory of verified passwords, against scrypt
on every request (the baseline a guard without that memory would pay), and against no
guard at all.

Usage (from the repository root)::

    .venv/bin/python bench/web_sign_in.py [--requests 2000]

What it does, in one process, with no network (the resource tree is called as Twisted's
``Site`` calls it): a ``SignInGuard`` over a root with a small page at ``/wallboard`` (open
to everyone signed in), the shipped people (58: agents, leads, managers) each with a web
password in a temporary ``secrets.yaml``, and the blocking work (the file's stat, scrypt)
run at once instead of in a thread, so the figure is the CPU a request costs:

* **no guard**: the page rendered directly (the floor);
* **guard, remembered**: the guard as the daemon runs it; every person signed in once
  before the timing, as after the first page load of the day;
* **guard, scrypt each time** (baseline): the same guard with its memory emptied before
  every request, so each request checks the password with scrypt (N=2^14, r=8, p=1).

It prints each per-request time, the ratio baseline / remembered, and what the reference
site's pages cost the daemon per second: 58 people whose pages reload every 3 s (the agent
page's interval) is about 19 requests a second.
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet.defer import maybeDeferred
from twisted.web.resource import Resource
from twisted.web.static import Data
from twisted.web.test.requesthelper import DummyRequest

from callcenter.secrets import load_or_create_secrets, set_web_password
from callcenter.settings import load_settings
from callcenter.web_access import VerifiedPasswords, hash_password
from callcenter.web_guard import SignInGuard

ROOT = Path(__file__).resolve().parents[1]


def _request(person: str, password: str) -> DummyRequest:
    request = DummyRequest([b"wallboard"])
    request.requestHeaders.addRawHeader(b"authorization",
                                        b"Basic " + base64.b64encode(f"{person}:{password}".encode()))
    return request


def _timed(requests: list[DummyRequest], serve: Any, before_each: Any = None) -> float:
    """Seconds per request."""
    start = time.perf_counter()
    for request in requests:
        if before_each is not None:
            before_each()
        serve(request)
        if request.responseCode not in (None, 200):
            raise SystemExit(f"request refused: HTTP {request.responseCode}")
    return (time.perf_counter() - start) / len(requests)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per remembered / unguarded run")
    parser.add_argument("--scrypt-requests", type=int, default=40, help="requests of the scrypt baseline")
    args = parser.parse_args()
    settings = load_settings(ROOT / "config")
    people = [person.id for person in settings.agents]
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        secrets = load_or_create_secrets(state, people)
        passwords = {person: f"password of {person}" for person in people}
        for person, password in passwords.items():
            set_web_password(state, person, hash_password(password))
        page = Data(b"<h1>page</h1>", "text/html")
        root = Resource()
        root.putChild(b"wallboard", page)
        guard = SignInGuard(root, lambda: settings.people, api_token=secrets.api_token, state_dir=state,
                            run_blocking=lambda f, *a: maybeDeferred(f, *a))

        def through_guard(request: DummyRequest) -> None:
            guard.render(request)  # type: ignore[arg-type]

        def direct(request: DummyRequest) -> None:
            page.render(request)  # type: ignore[arg-type]

        def many(n: int) -> list[DummyRequest]:
            return [_request(people[i % len(people)], passwords[people[i % len(people)]]) for i in range(n)]

        _timed(many(len(people)), through_guard)  # everyone signs in once (the day's first page)
        floor = _timed(many(args.requests), direct)
        remembered = _timed(many(args.requests), through_guard)

        def forget() -> None:
            guard._verified = VerifiedPasswords()

        scrypt = _timed(many(args.scrypt_requests), through_guard, before_each=forget)
    rate = len(people) / 3.0
    print(f"python {sys.version.split()[0]}; {len(people)} people; no network (resources called as Site does)")
    print(f"  no guard                          : {floor * 1e6:10.1f} us per request")
    print(f"  guard, remembered (as the daemon) : {remembered * 1e6:10.1f} us per request")
    print(f"  guard, scrypt each time (baseline): {scrypt * 1e6:10.1f} us per request")
    print(f"  ratio baseline / remembered       : {scrypt / remembered:10.0f} x")
    print(f"  the guard's own cost              : {(remembered - floor) * 1e6:10.1f} us per request")
    print(f"  reference site, {rate:.0f} requests/s ({len(people)} pages reloading every 3 s): "
          f"{remembered * rate * 100:.2f}% of a core remembered, {scrypt * rate * 100:.0f}% with scrypt each time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
