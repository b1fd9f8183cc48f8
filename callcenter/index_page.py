"""The daemon's front page: links to the wallboard, the reports and everyone's page.

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

__all__ = ["render_index"]

_STYLE: Final = """
body { font-family: sans-serif; margin: 1em; max-width: 60em; } h1 { font-size: 1.3em; } h2 { font-size: 1.1em; }
ul.people { columns: 3; } .muted { color: #666; }
"""


def _link(href: str, text: str) -> str:
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def render_index(site: str, teams: Sequence[TeamSettings], people: Sequence[AgentSettings]) -> str:
    """The front page of ``site``: the shared pages, then the leads' and each team's agents' pages."""
    leads = [p for p in people if p.role in ("lead", "manager")]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(site)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(site)}</h1>",
        (f"<p>{_link('/wallboard', 'Wallboard')} (queues, agents, campaigns live) &middot; "
        f"{_link('/reports', 'Reports')} (calls, commission, QA, texts) &middot; "
        f"<span class=muted>{_link('/api/health', 'health')}, {_link('/metrics', 'metrics')}</span></p>"),
        "<h2>Team leads and managers</h2>",
        '<ul class="people">' + "".join(
            f"<li>{_link(f'/lead/{quote(p.id)}', f'{p.name} ({p.id})')} <span class=muted>{escape(p.team)}</span></li>"
            for p in leads) + "</ul>",
    ]
    for team in teams:
        agents = [p for p in people if p.team == team.id and p.role == "agent"]
        if not agents:
            continue
        parts.append(f"<h2>{escape(team.name)} <span class=muted>({escape(team.id)})</span></h2>")
        parts.append('<ul class="people">' + "".join(
            f"<li>{_link(f'/agent/{quote(p.id)}', f'{p.name} ({p.id})')}</li>" for p in agents) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
