"""Configuration loading: shipped defaults, overrides, and errors naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.settings import ConfigError, load_settings
from callcenter.yamlsource import YamlSourceError, load_yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_configuration_is_valid() -> None:
    """The files in config/ load into the reference site: 1 hotline + 48 outbound agents, 6 leads, 3 managers."""
    settings = load_settings(CONFIG)
    roles = [a.role for a in settings.agents]
    assert roles.count("agent") == 49
    assert roles.count("lead") == 6
    assert roles.count("manager") == 3
    assert {q.name for q in settings.queues} == {"hotline", "outbound"}
    overflow = [a.id for a in settings.agents if "hotline" in a.queues and a.team != "hotline"]
    assert len(overflow) == 12
    assert settings.agent("1001").queues == {"hotline": 0}
    assert settings.sources == ("config/callcenter.yaml", "config/agents.yaml", "config/queues.yaml")


def test_override_replaces_only_the_keys_it_sets(tmp_path: Path) -> None:
    """A site file changes one key and keeps every other default."""
    site = _write(tmp_path, "site.yaml", "asterisk:\n  ami:\n    port: 15038\n")
    settings = load_settings(CONFIG, [site])
    assert settings.ami.port == 15038
    assert settings.ami.username == "callcenter"
    assert settings.sources[-1] == str(site)


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    """Every bad value is reported with its file, line, column and dotted key, all at once."""
    bad = _write(tmp_path, "bad.yaml", (
        "asterisk:\n"
        "  ami:\n"
        "    port: abc\n"
        "    usernme: x\n"
        "recordings:\n"
        "  retention_days: -3\n"
    ))
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [bad])
    lines = str(info.value).splitlines()
    assert lines == [
        f"{bad}:3:5: asterisk.ami.port: expected an integer in 1..65535, got 'abc'",
        f"{bad}:4:5: asterisk.ami.usernme: unknown setting",
        f"{bad}:6:3: recordings.retention_days: expected an integer in 1..36500, got -3",
    ]


def test_agent_errors_point_at_the_list_item(tmp_path: Path) -> None:
    """Unknown teams and queues of an agent are reported on that agent's line."""
    bad = _write(tmp_path, "agents.yaml", (
        "agents:\n"
        "  - {id: \"1001\", team: hotline}\n"
        "  - {id: \"12\", team: nope, queues: {hotlin: 0}}\n"
    ))
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [bad])
    text = str(info.value)
    assert f"{bad}:3:6: agents[1].id: expected 3 to 8 digits" in text
    assert f"{bad}:3:16: agents[1].team: unknown team 'nope'" in text
    assert f"{bad}:3:37: agents[1].queues.hotlin: unknown queue 'hotlin'" in text


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    """A YAML syntax error is a ConfigError with the file and line, not a traceback."""
    bad = _write(tmp_path, "syntax.yaml", "site:\n  name: [unclosed\n  other: 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [bad])
    assert str(info.value).startswith(f"{bad}:")
    assert "invalid YAML" in str(info.value)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    """PyYAML keeps the last of two equal keys silently; the loader refuses them with the line."""
    path = _write(tmp_path, "dup.yaml", "http:\n  port: 1\n  port: 2\n")
    with pytest.raises(YamlSourceError) as info:
        load_yaml(path)
    assert str(info.value) == f"{path}:3:3: duplicate key 'port'"


def test_unknown_time_zone(tmp_path: Path) -> None:
    """The site's time zone must be a real IANA zone."""
    bad = _write(tmp_path, "tz.yaml", "site:\n  timezone: Mars/Olympus\n")
    with pytest.raises(ConfigError, match=r"tz.yaml:2:3: site.timezone: expected an IANA time zone"):
        load_settings(CONFIG, [bad])


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after validation."""
    settings = load_settings(CONFIG)
    with pytest.raises(AttributeError):
        settings.ami.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("role", "own_team", "team", "expected"),
    [
        ("manager", "management", "team1", True),
        ("manager", "", "", True),
        ("lead", "team1", "team1", True),
        ("lead", "team1", "team2", False),
        ("lead", "", "", False),  # a lead without a team leads no one
        ("agent", "team1", "team1", False),
    ],
)
def test_oversees_is_the_one_rule_of_who_covers_whose_work(
    role: str, own_team: str, team: str, expected: bool
) -> None:
    from callcenter.settings import AgentSettings

    who = AgentSettings(id="9", name="x", team=own_team, role=role, queues={})
    assert who.oversees(team) is expected


def test_sms_settings_and_their_errors(tmp_path: Path) -> None:
    """``sms``: off by default; a gateway, sender and window are read; bad ones name file, line and key."""
    from datetime import time

    default = load_settings(CONFIG).sms
    assert not default.enabled and default.hours == (time(8), time(21)) and default.opt_out_note == "回T退订"
    assert default.min_days_between == 7  # one marketing text a week per number
    site = _write(tmp_path, "site.yaml", 'sms:\n  gateway: "10.0.0.5:5070"\n  hours: "09:30-20:00"\n'
                                         '  signature: "【某某公司】"\n  rate_per_second: 2.5\n')
    sms = load_settings(CONFIG, [site]).sms
    assert (sms.enabled, sms.gateway, sms.hours, sms.signature, sms.rate_per_second) == (
        True, "10.0.0.5:5070", (time(9, 30), time(20)), "【某某公司】", 2.5)
    all_day = _write(tmp_path, "all-day.yaml", 'sms:\n  hours: "00:00-24:00"\n')
    assert load_settings(CONFIG, [all_day]).sms.hours == (time(0), time.max)
    bad = _write(tmp_path, "bad.yaml", 'sms:\n  gateway: "sip:gw"\n  sender: "10-69"\n  hours: "21:00-08:00"\n'
                                       '  max_parts: 0\n')
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [bad])
    lines = str(info.value).splitlines()
    assert len(lines) == 4, lines
    assert lines[0].startswith(f"{bad}:2:3: sms.gateway: expected host or host:port"), lines
    assert lines[1].startswith(f"{bad}:3:3: sms.sender: expected 3 to 20 digits"), lines
    assert lines[2] == f"{bad}:4:3: sms.hours: must be a window within one day, its start before its end", lines
    assert lines[3].startswith(f"{bad}:5:3: sms.max_parts: expected an integer in 1..10"), lines
    template = _write(tmp_path, "template.yaml", 'sms:\n  ticket_template: "工单{tiket}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [template])
    (line,) = str(info.value).splitlines()
    assert line.startswith(f"{template}:2:3: sms.ticket_template: template: unknown field {{tiket}}"), line


def test_a_per_team_queue_gets_one_queue_per_team_joined_by_that_teams_agents(tmp_path: Path) -> None:
    """``per_team: true``: outbound-team1..6 with outbound's settings; each agent joins their
    team's at their outbound penalty; agents not in outbound (the hotline agent) join none."""
    site = _write(tmp_path, "site.yaml", "queues:\n  outbound:\n    per_team: true\n")
    settings = load_settings(CONFIG, [site])
    outbound = settings.queue("outbound")
    assert outbound.per_team
    teams = settings.team_queues("outbound")
    assert teams == {f"team{n}": f"outbound-team{n}" for n in range(1, 7)}
    team1 = settings.queue("outbound-team1")
    assert (team1.parent, team1.team, team1.per_team) == ("outbound", "team1", False)
    assert (team1.strategy, team1.wrapup_time, team1.service_level_seconds) == (
        outbound.strategy, outbound.wrapup_time, outbound.service_level_seconds)
    assert settings.agent("2101").queues == {"outbound": 0, "hotline": 5, "outbound-team1": 0}
    assert settings.agent("2603").queues == {"outbound": 0, "outbound-team6": 0}
    assert settings.agent("1001").queues == {"hotline": 0}
    assert settings.team_queues("hotline") == {}
    assert load_settings(CONFIG).team_queues("outbound") == {}  # the shipped default: one pooled queue


def test_a_queues_longest_wait_its_message_key_and_what_callers_do_with_no_agents(tmp_path: Path) -> None:
    """max_wait (300 s by default), message_key (none by default) and when_empty (wait by
    default): the shipped hotline offers a message after 300 s, on key 1, or at once with no agent."""
    shipped = load_settings(CONFIG)
    hotline, outbound = shipped.queue("hotline"), shipped.queue("outbound")
    assert (hotline.max_wait, hotline.message_key, hotline.when_empty) == (300, "1", "message")
    assert (outbound.max_wait, outbound.message_key, outbound.when_empty) == (300, None, "wait")
    site = _write(tmp_path, "site.yaml", "queues:\n  outbound:\n    max_wait: 60\n    message_key: '#'\n")
    changed = load_settings(CONFIG, [site]).queue("outbound")
    assert (changed.max_wait, changed.message_key) == (60, "#")
    bad = _write(tmp_path, "bad.yaml", (
        "queues:\n"
        "  hotline:\n"
        "    max_wait: 5\n"
        "    message_key: 12\n"
        "    when_empty: hangup\n"
        "  outbound:\n"
        "    overflow_after: 90\n"
        "    max_wait: 90\n"
    ))
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [bad])
    assert str(info.value).splitlines() == [
        f"{bad}:3:5: queues.hotline.max_wait: expected an integer in 10..3600, got 5",
        f"{bad}:4:5: queues.hotline.message_key: expected one key: 0-9, * or #, got 12",
        f"{bad}:5:5: queues.hotline.when_empty: expected one of wait, message, got 'hangup'",
        (f"{bad}:7:5: queues.outbound.overflow_after: 90 s is not below max_wait (90 s): callers would "
         "leave the queue before the overflow agents ring"),
    ]


def test_announcements_need_their_frequency(tmp_path: Path) -> None:
    """announce_position / announce_holdtime without announce_every would play nothing
    (Asterisk announces only with announce-frequency): refused, naming the key."""
    site = _write(tmp_path, "site.yaml", "queues:\n  hotline:\n    announce_position: true\n    announce_every: 45\n")
    hotline = load_settings(CONFIG, [site]).queue("hotline")
    assert (hotline.announce_position, hotline.announce_holdtime, hotline.announce_every) == (True, False, 45)
    shipped = load_settings(CONFIG)
    assert (shipped.queue("hotline").announce_position, shipped.queue("hotline").announce_every) == (True, 60)
    assert (shipped.queue("outbound").announce_position, shipped.queue("outbound").announce_every) == (False, 0)
    bad = _write(tmp_path, "bad.yaml", "queues:\n  hotline:\n    announce_holdtime: true\n    announce_every: 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [bad])
    assert str(info.value).splitlines() == [  # the 0 is the line to fix
        (f"{bad}:4:5: queues.hotline.announce_every: 0 makes no announcements, but announce_position and "
         "announce_holdtime are on: set them to false, or the seconds between two")]
    bad = _write(tmp_path, "bad2.yaml", "queues:\n  outbound:\n    announce_holdtime: true\n")
    with pytest.raises(ConfigError) as info:  # never set: the flag is the line to fix
        load_settings(CONFIG, [bad])
    assert str(info.value).splitlines() == [
        (f"{bad}:3:5: queues.outbound.announce_holdtime: needs announce_every: the seconds between announcements "
         "(0 makes none)")]


def test_which_callers_who_hang_up_waiting_are_called_back(tmp_path: Path) -> None:
    """call_back_abandoned: seconds of waiting (shipped 10 for the hotline), absent: never."""
    shipped = load_settings(CONFIG)
    assert (shipped.queue("hotline").call_back_abandoned, shipped.queue("outbound").call_back_abandoned) == (10, None)
    site = _write(tmp_path, "site.yaml", "queues:\n  hotline:\n    call_back_abandoned: 0\n")
    assert load_settings(CONFIG, [site]).queue("hotline").call_back_abandoned == 0
    bad = _write(tmp_path, "bad.yaml", "queues:\n  hotline:\n    call_back_abandoned: yes\n")
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [bad])
    assert str(info.value).splitlines() == [
        f"{bad}:3:5: queues.hotline.call_back_abandoned: expected an integer in 0..3600, got True"]


def test_a_team_queue_name_taken_by_a_configured_queue_is_named(tmp_path: Path) -> None:
    site = _write(tmp_path, "site.yaml", (
        "queues:\n"
        "  outbound:\n"
        "    per_team: true\n"
        "  outbound-team2: {}\n"
    ))
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [site])
    assert str(info.value) == (f"{site}:3:5: queues.outbound.per_team: team team2's queue would be called "
                               "'outbound-team2', the name of a configured queue; rename one of them")


def test_manual_dial_do_not_call_is_warn_or_block(tmp_path: Path) -> None:
    """manual_dial.do_not_call: warn by default, block when set, anything else named by line."""
    assert load_settings(CONFIG).manual_dial.do_not_call == "warn"
    block = _write(tmp_path, "block.yaml", "manual_dial:\n  do_not_call: block\n")
    assert load_settings(CONFIG, [block]).manual_dial.do_not_call == "block"
    bad = _write(tmp_path, "bad.yaml", "manual_dial:\n  do_not_call: maybe\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:2:3: manual_dial.do_not_call: .*warn.*block"):
        load_settings(CONFIG, [bad])


def test_a_site_yaml_saved_as_gbk_names_file_line_and_column(tmp_path: Path) -> None:
    """Notepad's GBK is a ConfigError at the first character that is not UTF-8, not a UnicodeDecodeError;
    the other files' problems are reported with it."""
    import shutil

    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("site.yaml"))
    (config / "site.yaml").write_bytes("site:\n  name: 呼叫中心\n".encode("gbk"))
    date = _write(tmp_path, "date.yaml", "site:\n  name: 2026-02-30\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, [date], root=tmp_path)
    assert str(info.value).splitlines() == [
        "config/site.yaml:2:9: not UTF-8 text: invalid start byte; save the file as UTF-8",
        ("date.yaml:2:9: site.name: '2026-02-30' is not a valid date (day is out of range for month); "
        "write it in quotes if it is text"),
    ]


@pytest.mark.parametrize(("text", "problem"), [
    ("site:\n  name: 2026-02-30\n", ("2:9: site.name: '2026-02-30' is not a valid date (day is out of range for "
                                    "month); write it in quotes if it is text")),
    ("agents:\n  - {id: '1001', name: 2024-13-45}\n", ("2:24: agents[0].name: '2024-13-45' is not a valid date "
                                                      "(month must be in 1..12); write it in quotes if it is text")),
    ('http:\n  port: !!int "x"\n', "2:9: http.port: 'x' is not a valid integer"),
    ("sms:\n  rate_per_second: !!float abc\n", "2:20: sms.rate_per_second: 'abc' is not a valid number"),
    ("lab:\n  mirror: !!timestamp soon\n", "2:11: lab.mirror: 'soon' is not a valid date"),
    ("queues:\n  2026-02-30: {}\n", ("2:3: queues: '2026-02-30' is not a valid date (day is out of range for month); "
                                    "write it in quotes if it is text")),
    ("site:\n  name: a\x07b\n", "2:10: invalid YAML: character #x0007 is not allowed"),
])
def test_a_value_yaml_cannot_build_names_file_line_and_key(tmp_path: Path, text: str, problem: str) -> None:
    """PyYAML's constructors raise a bare ValueError (no file, no line) for an impossible date or a bad tagged
    value: the loader reports it at the value, under its key."""
    bad = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [bad])
    assert str(info.value) == f"{bad}:{problem}"


@pytest.mark.parametrize("bad", [".nan", ".NAN", ".inf", "-.Inf", "9" * 400])
def test_numeric_settings_must_be_finite(tmp_path: Path, bad: str) -> None:
    """.nan passes every range check (nan < lo and nan > hi are both false) and crashed the commission
    shares' Decimal sum: every numeric setting refuses it and .inf (and an int too big for a float)."""
    shown = {".nan": "nan", ".NAN": "nan", ".inf": "inf", "-.Inf": "-inf"}.get(bad, bad)
    site = _write(tmp_path, "site.yaml", (
        "asterisk:\n"
        "  ami:\n"
        f"    ping_interval: {bad}\n"
        "sms:\n"
        f"  rate_per_second: {bad}\n"
        "commission:\n"
        f"  agent: {bad}\n"
    ))
    with pytest.raises(ConfigError) as info:
        load_settings(CONFIG, [site])
    assert str(info.value).splitlines() == [
        f"{site}:3:5: asterisk.ami.ping_interval: expected a finite number in 1..3600, got {shown}",
        f"{site}:7:3: commission.agent: expected a finite number in 0.0..1.0, got {shown}",
        f"{site}:5:3: sms.rate_per_second: expected a finite number in 0.1..100.0, got {shown}",
    ]


def test_yaml_source_bytes_not_utf8_are_located_by_character(tmp_path: Path) -> None:
    """The column of a byte that is not UTF-8 counts the characters before it (UTF-8 ones too), not bytes."""
    path = tmp_path / "mixed.yaml"
    path.write_bytes("site:\n  name: 呼叫\n".encode() + b"  ticket_prefix: caf\xe9\n")
    with pytest.raises(YamlSourceError) as info:
        load_yaml(path, "mixed.yaml")
    assert str(info.value) == "mixed.yaml:3:21: not UTF-8 text: invalid continuation byte; save the file as UTF-8"
    path.write_bytes("site:\n  name: 呼叫\xe9\n".encode() + b"\xff\n")
    with pytest.raises(YamlSourceError) as info:
        load_yaml(path, "mixed.yaml")
    assert str(info.value) == "mixed.yaml:3:1: not UTF-8 text: invalid start byte; save the file as UTF-8"
    path.write_bytes(b"# caf\xc3\xa9 \xe9\n")
    with pytest.raises(YamlSourceError) as info:
        load_yaml(path, "mixed.yaml")
    assert (info.value.location.line, info.value.location.column) == (1, 8)  # "# café " is 7 characters, 8 bytes
