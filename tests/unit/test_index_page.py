"""The daemon's front page (callcenter.index_page): links to the shared pages and everyone's own."""

from __future__ import annotations

from pathlib import Path

from twisted.web.test.requesthelper import DummyRequest

from callcenter.http_api import IndexPage
from callcenter.index_page import render_index
from callcenter.settings import AgentSettings, TeamSettings, load_settings

SETTINGS = load_settings(Path(__file__).resolve().parents[2] / "config")


def test_the_front_page_links_every_page_of_the_shipped_site() -> None:
    request = DummyRequest([b""])
    html = IndexPage(SETTINGS).render_GET(request).decode()  # type: ignore[arg-type]
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert '<a href="/wallboard">Wallboard</a>' in html and '<a href="/reports">Reports</a>' in html
    assert '<a href="/lead/8001">Team lead 1 (8001)</a>' in html and '<a href="/lead/9001">Manager 1 (9001)</a>' in html
    assert '<a href="/agent/1001">Hotline agent (1001)</a>' in html and '<a href="/agent/2608">' in html
    assert html.count('href="/agent/') == 49  # the hotline agent and 48 outbound agents
    assert "<h2>Management" not in html  # a team without agents gets no list


def test_names_are_escaped_and_ids_quoted() -> None:
    html = render_index("A <b>site</b>", [TeamSettings(id="t", name="T & co")],
                        [AgentSettings(id="7 7", name="<x>", team="t", role="agent", queues={})])
    assert "A &lt;b&gt;site&lt;/b&gt;" in html and "T &amp; co" in html
    assert '<a href="/agent/7%207">&lt;x&gt; (7 7)</a>' in html


def test_any_other_path_under_it_is_not_found() -> None:
    request = DummyRequest([b"nope"])
    body = IndexPage(SETTINGS).render_GET(request)  # type: ignore[arg-type]
    assert request.responseCode == 404 and b'href="/"' in body


def test_a_signed_in_person_sees_who_they_are_and_only_what_they_may_open() -> None:
    """The links follow the access rules (docs/web-access.md): an agent their page and the
    wallboard; a lead also the reports, their own lead page and their team's agents; a manager all."""
    people = SETTINGS.agents
    agent = render_index("Site", SETTINGS.teams, people, SETTINGS.people["2101"])
    assert 'Signed in as Agent 2101 (2101, agent): <a href="/agent/2101">your page</a>' in agent
    assert '<a href="/wallboard">Wallboard</a>' in agent and "/reports" not in agent
    assert "/lead/" not in agent and agent.count('href="/agent/') == 1
    assert '<a href="/password">change password</a>' in agent and '<a href="/signout">sign out</a>' in agent
    lead = render_index("Site", SETTINGS.teams, people, SETTINGS.people["8001"])
    assert 'Signed in as Team lead 1 (8001, lead): <a href="/lead/8001">your page</a>' in lead
    assert '<a href="/reports">Reports</a>' in lead and lead.count('href="/lead/') == 2  # "your page" and the list
    assert lead.count('href="/agent/') == 8 and '<a href="/agent/2101">' in lead and "/agent/2201" not in lead
    manager = render_index("Site", SETTINGS.teams, people, SETTINGS.people["9001"])
    assert manager.count('href="/agent/') == 49 and '<a href="/lead/8006">' in manager


def test_the_page_reads_who_signed_in_from_the_guard() -> None:
    from callcenter.web_access import Caller

    request = DummyRequest([b""])
    request._callcenter_caller = Caller(person=SETTINGS.people["2102"])  # what SignInGuard sets
    html = IndexPage(SETTINGS).render_GET(request).decode()  # type: ignore[arg-type]
    assert "Signed in as Agent 2102" in html and html.count('href="/agent/') == 1
