"""The demo's own pieces that can be checked without a lab: its dialer configuration and
the time zone it gives its leads (``make demo`` itself runs in tests/integration/test_daemon.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcenter.demo import (
    CAMPAIGN,
    demo_dialer_yaml,
    open_around_the_clock,
    zone_at_local_hour,
)
from callcenter.dialer.config import parse_dialer_config
from callcenter.ivr.flow import read_flow


def test_the_demo_dialer_configuration_is_valid() -> None:
    """A predictive campaign of handed-out leads, and a preview campaign for call-backs."""
    config = parse_dialer_config(demo_dialer_yaml("Etc/GMT-8"), "demo dialer.yaml")
    assert config.callbacks_campaign == "demo-callbacks"
    campaigns = {c.campaign.name: c for c in config.campaigns}
    assert {name: c.campaign.dial_mode for name, c in campaigns.items()} == {
        CAMPAIGN: "predictive", "demo-callbacks": "preview"}
    assert campaigns[CAMPAIGN].handout == "agent"


@pytest.mark.parametrize("hour", range(24))
def test_the_leads_zone_is_inside_the_calling_hours_whatever_the_hour(hour: int) -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC) + timedelta(hours=hour)
    zone = zone_at_local_hour(10, 19, now)
    assert 10 <= now.astimezone(ZoneInfo(zone)).hour < 19, zone


@pytest.mark.parametrize("local", ["2026-12-06T00:00:00", "2026-12-06T12:30:00", "2026-12-06T23:59:59"])
def test_the_demos_hotline_is_open_every_minute_of_every_day(tmp_path: Path, local: str) -> None:
    """The demo's (and the lab tests') hotline is open at any hour: a CI run once failed when its
    calls crossed 23:59 local time, which an '00:00-23:59' window leaves closed."""
    root = Path(__file__).resolve().parents[2]
    flow = read_flow(open_around_the_clock(root / "ivr_flows" / "hotline.yaml", tmp_path / "open.yaml"))
    when = datetime.fromisoformat(local)
    assert all(flow.business_hours.open_at(when + timedelta(days=d)) for d in range(7))
    assert flow.holidays == frozenset()
