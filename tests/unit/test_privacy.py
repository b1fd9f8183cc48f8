"""What agents see of customers' numbers (callcenter.privacy, web_access.numbers_masked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.privacy import mask_number, mask_numbers_in, masked_json
from callcenter.settings import ConfigError, load_settings
from callcenter.web_access import Caller, numbers_masked

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(ROOT / "config")


@pytest.mark.parametrize(("number", "shown"), [
    ("13800138000", "138****8000"),      # a mobile: the way Chinese services print one
    ("02012345678", "020****5678"),      # a landline with its area code
    ("075512345678", "075****5678"),     # 12 digits: still four stars (the length says nothing)
    ("+3312345678", "+33****5678"),      # international
    ("12345678", "****5678"),            # a local number: the last four
    ("1234567", "****4567"),
    ("123456", "123456"),                # short: a service number or an extension
    ("10086", "10086"),
    ("anonymous", "anonymous"),          # withheld: nothing to hide
    ("", ""),
])
def test_a_number_keeps_its_head_and_last_four(number: str, shown: str) -> None:
    assert mask_number(number) == shown


def test_numbers_in_a_text_are_masked_and_tickets_and_dates_are_not() -> None:
    text = "calling 13912345678 about GD20231027001 (since 2026-12-07 10:00, 1999.00 yuan, +8613912345678)"
    assert mask_numbers_in(text) == (
        "calling 139****5678 about GD20231027001 (since 2026-12-07 10:00, 1999.00 yuan, +86****5678)")


def test_json_answers_have_their_phone_fields_and_errors_masked_at_any_depth() -> None:
    """The numbers fields, errors, and the read-only texts as the agent page shows them: a
    lead's other columns, a call's hops, the earlier calls' and follow-ups' notes and outcomes
    (a call-back request names the number: it was shown whole). The live
    call's notes and the customer's (what the agent edits) stay as written, and ids that are
    long digit runs (linkedid, uniqueid) are not numbers."""
    value = {"call_record": {"phone": "13800138000", "ticket_number": "GD20261207001", "talk_seconds": 12345678,
                             "description": "call back on 13900000009", "linkedid": "1733571234.56",
                             "transfers": ["1001>outside:13912345678@30", "1001>billing@125"]},
             "customer": {"phone": "13800138000", "notes": "wife: 13900000010"},
             "calls": [{"phone": "13900000001", "description": "rang from 13900000011",
                        "outcome": "message left; callback requested: 13900000012"}, {"phone": None}],
             "follow_ups": [{"description": "her other phone 02087654321", "linkedid": "1733571299.12",
                             "outcome": "callback requested: 13900000013"}],
             "lead": {"name": "Li", "number": "02012345678", "extra": {"note": "13900000002", "city": "Guangzhou"}},
             "error": "13800138000 is on the do-not-call list"}
    assert masked_json(value) == {
        "call_record": {"phone": "138****8000", "ticket_number": "GD20261207001", "talk_seconds": 12345678,
                        "description": "call back on 13900000009", "linkedid": "1733571234.56",
                        "transfers": ["1001>outside:139****5678@30", "1001>billing@125"]},
        "customer": {"phone": "138****8000", "notes": "wife: 13900000010"},
        "calls": [{"phone": "139****0001", "description": "rang from 139****0011",
                   "outcome": "message left; callback requested: 139****0012"}, {"phone": None}],
        "follow_ups": [{"description": "her other phone 020****4321", "linkedid": "1733571299.12",
                        "outcome": "callback requested: 139****0013"}],
        "lead": {"name": "Li", "number": "020****5678", "extra": {"note": "139****0002", "city": "Guangzhou"}},
        "error": "138****8000 is on the do-not-call list"}
    assert value["call_record"]["phone"] == "13800138000"  # the given value is left alone


def test_agents_get_numbers_masked_leads_managers_and_the_token_whole() -> None:
    people = SETTINGS.people
    assert numbers_masked(Caller(person=people["2101"]), True)
    assert not numbers_masked(Caller(person=people["2101"]), False)  # privacy.agent_numbers: full
    assert not numbers_masked(Caller(person=people["8001"]), True)   # a team lead
    assert not numbers_masked(Caller(person=None), True)             # the host's API token
    assert not numbers_masked(None, True)                            # no guard (in-process)


def test_the_setting_is_masked_unless_said_and_checked(tmp_path: Path) -> None:
    assert SETTINGS.privacy.agent_numbers == "masked" and SETTINGS.privacy.mask_for_agents
    site = tmp_path / "site.yaml"
    site.write_text("privacy:\n  agent_numbers: full\n", encoding="utf-8")
    assert not load_settings(ROOT / "config", [site]).privacy.mask_for_agents
    site.write_text("privacy:\n  agent_numbers: hidden\n  show: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(ROOT / "config", [site])
    assert [str(p) for p in info.value.problems] == [
        f"{site}:2:3: privacy.agent_numbers: expected one of masked, full, got 'hidden'",
        f"{site}:3:3: privacy.show: unknown setting"]
