"""The demo's own pieces that can be checked without a lab: its dialer configuration and
the time zone it gives its leads (``make demo`` itself runs in tests/integration/test_daemon.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.demo import CAMPAIGN, demo_dialer_yaml, zone_at_local_hour
from callcenter.dialer.config import parse_dialer_config


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
