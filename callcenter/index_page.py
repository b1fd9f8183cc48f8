"""The daemon's front page: links to the wallboard, the reports and the pages the person may open.

``GET /`` on the HTTP port (served by :class:`callcenter.http_api.IndexPage`): a site's
people open the daemon's address and pick their page (docs/pages.md). Pure: the
configured teams and agents in, HTML out (every value escaped).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final
from urllib.parse import quote

from callcenter.settings import AgentSettings, TeamSettings
from callcenter.web_access import Caller, refusal

__all__ = ["render_index"]

_STYLE: Final = """
body { font-family: sans-serif; margin: 1em; max-width: 60em; } h1 { font-size: 1.3em; } h2 { font-size: 1.1em; }
ul.people { columns: 3; } .muted { color: #666; }
"""


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def render_index(site: str, teams: Sequence[TeamSettings], people: Sequence[AgentSettings],
                 signed_in: AgentSettings | None = None) -> str:
    """The front page of ``site``: the shared pages, then the leads' and each team's agents' pages.

    ``signed_in``: the person who asks (docs/web-access.md). They see who they are, their own
    page first, and only the links they may open (:func:`callcenter.web_access.refusal`): an
    agent the wallboard and their page, a lead also the reports and their team's agents.
    """
    by_id = {p.id: p for p in people}
    caller = Caller(person=signed_in)

    def may(path: str) -> bool:
        return refusal(caller, by_id, "GET", path.strip("/").split("/")) is None

    leads = [p for p in people if p.role in ("lead", "manager") and may(f"/lead/{quote(p.id)}")]
    shared = [_link(path, text) + f" ({what})" for path, text, what in (
        ("/wallboard", "Wallboard", "queues, agents, campaigns live"),
        ("/reports", "Reports", "calls, commission, QA, texts, agent time")) if may(path)]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(site)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(site)}</h1>",
    ]
    if signed_in is not None:
        own = f"/lead/{quote(signed_in.id)}" if signed_in.role in ("lead", "manager") else f"/agent/{quote(signed_in.id)}"
        parts.append(f"<p>Signed in as {escape(signed_in.name)} ({escape(signed_in.id)}, {escape(signed_in.role)}): "
                     f"{_link(own, 'your page')} &middot; {_link('/password', 'change password')} &middot; "
                     f"{_link('/signout', 'sign out')}</p>")
    parts.append("<p>" + " &middot; ".join(shared) + (" &middot; " if shared else "")
                 + f"<span class=muted>{_link('/api/health', 'health')}, {_link('/metrics', 'metrics')}</span></p>")
    if leads:
        parts += ["<h2>Team leads and managers</h2>", '<ul class="people">' + "".join(
            f"<li>{_link(f'/lead/{quote(p.id)}', f'{p.name} ({p.id})')} <span class=muted>{escape(p.team)}</span></li>"
            for p in leads) + "</ul>"]
    for team in teams:
        agents = [p for p in people if p.team == team.id and p.role == "agent" and may(f"/agent/{quote(p.id)}")]
        if not agents or signed_in is not None and signed_in.role == "agent":
            continue
        parts.append(f"<h2>{escape(team.name)} <span class=muted>({escape(team.id)})</span></h2>")
        parts.append('<ul class="people">' + "".join(
            f"<li>{_link(f'/agent/{quote(p.id)}', f'{p.name} ({p.id})')}</li>" for p in agents) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
