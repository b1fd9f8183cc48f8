"""`callcenter ivr check`: graph defects of a flow reported with file and line, exit status."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from callcenter.ivr import FlowError, check_file, load_flow
from callcenter.ivr.check import check_message_keys
from callcenter.ivr.cli import add_parser, run

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "ivr_fixtures"
HOTLINE = ROOT / "ivr_flows" / "hotline.yaml"


def _check(name: str) -> list[str]:
    return [str(p) for p in check_file(FIXTURES / name, name)]


def test_shipped_hotline_has_no_problems() -> None:
    """The shipped flow passes every check."""
    assert check_file(HOTLINE) == []


def test_unknown_node_kind() -> None:
    """A node kind that does not exist is named on its 'kind' line."""
    assert _check("unknown_kind.yaml") == [
        ("unknown_kind.yaml:14:5: nodes.music.kind: unknown node kind 'playback' (expected one of "
        "branch, callback, collect, hangup, menu, message, play, queue, set, transfer, voicemail)")
    ]


def test_unreachable_node() -> None:
    """A node no entry leads to is reported on its own line."""
    assert _check("unreachable.yaml") == [
        "unreachable.yaml:13:3: nodes.orphan: unreachable node: no entry leads here"
    ]


def test_dangling_target() -> None:
    """A menu choice naming a missing node is reported on that choice's line."""
    assert _check("dangling.yaml") == [
        "dangling.yaml:14:7: nodes.menu.choices.2: dangling target: no node 'sales_queue'"
    ]


def test_missing_prompt_and_missing_language() -> None:
    """An undefined prompt and a prompt without one of the flow's languages are both named."""
    assert _check("missing_prompt.yaml") == [
        "missing_prompt.yaml:7:3: prompts.hello: prompt has no text in language 'en'",
        "missing_prompt.yaml:15:5: nodes.start.prompt: missing prompt 'welcome'",
    ]


def test_loop_without_exit() -> None:
    """A cycle from which no terminal node is reachable is reported once, naming its nodes."""
    assert _check("loop.yaml") == [
        ("loop.yaml:15:3: nodes.ask: loop without exit: no queue, transfer, callback, voicemail, "
        "message or hangup is reachable from ask -> again")
    ]


def test_a_loop_with_an_exit_is_fine(tmp_path: Path) -> None:
    """A menu that loops back to itself through a play node is valid: its fallback is an exit."""
    path = tmp_path / "ok.yaml"
    path.write_text(
        "flow: ok\nlanguages: [en]\nentries: {main: menu}\nfallback: bye\n"
        "prompts: {menu: {en: Menu}, again: {en: Again}}\n"
        "nodes:\n"
        "  menu: {kind: menu, prompt: menu, choices: {'1': again, '2': bye}}\n"
        "  again: {kind: play, prompt: again, next: menu}\n"
        "  bye: {kind: hangup}\n",
        encoding="utf-8",
    )
    assert check_file(path) == []


def test_load_flow_refuses_a_flow_with_graph_problems() -> None:
    """The engine's loader raises on graph defects the schema reader lets through."""
    with pytest.raises(FlowError, match="dangling target"):
        load_flow(FIXTURES / "dangling.yaml")


def test_cli_exit_status_and_output(capsys: pytest.CaptureFixture[str]) -> None:
    """`ivr check` exits 0 for valid files and 1 if any file has a problem, printing each one."""
    parser = argparse.ArgumentParser(prog="callcenter")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ivr", "check", str(HOTLINE)])
    assert args.func(args) == 0
    assert capsys.readouterr().out == f"{HOTLINE}: OK\n"
    args = parser.parse_args(["ivr", "check", str(HOTLINE), str(FIXTURES / "loop.yaml"),
                              str(FIXTURES / "missing.yaml")])
    assert run(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{FIXTURES / 'loop.yaml'}:15:3: nodes.ask: loop without exit")
    assert err[1].startswith(f"{FIXTURES / 'missing.yaml'}: cannot read")
    assert err[2] == "2 of 3 flow file(s) invalid"


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.yaml")))
def test_every_defective_fixture_fails_the_cli(fixture: str) -> None:
    """Each flow in tests/ivr_fixtures has a defect the checker catches (exit status 1)."""
    assert run(argparse.Namespace(files=[FIXTURES / fixture])) == 1


def test_the_busy_prompt_names_each_queues_message_key() -> None:
    """The shipped busy prompt says 1 in both languages, the hotline's message_key; with the
    key changed to 2, or to none, or to #, each text that no longer says it is named."""
    flow = load_flow(HOTLINE)
    assert check_message_keys(flow, {"hotline": "1", "outbound": None}) == []
    line = next(n for n, text in enumerate(HOTLINE.read_text(encoding="utf-8").splitlines(), 1)
                if text.startswith("  all_busy:"))
    two = [str(p) for p in check_message_keys(flow, {"hotline": "2"})]
    assert two == [f"{HOTLINE}:{line}:3: prompts.all_busy.{lang}: the busy prompt of queue 'hotline' must tell "
                   "callers its message_key '2' (config/queues.yaml), not ['1']" for lang in ("zh", "en")]
    none = [str(p) for p in check_message_keys(flow, {"hotline": None})]
    assert [p.split(": ", 2)[1:] for p in none] == [
        [f"prompts.all_busy.{lang}", ("tells callers to press 1, but queue 'hotline' has no message_key "
                                     "(config/queues.yaml)")] for lang in ("zh", "en")]
    assert len(check_message_keys(flow, {"hotline": "#"})) == 2
    assert check_message_keys(flow, {}) == []  # a queue the settings do not know: not this check's business


def test_check_config_refuses_a_busy_prompt_naming_another_key(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.cli import main

    site = tmp_path / "site.yaml"
    site.write_text('queues:\n  hotline:\n    message_key: "2"\n', encoding="utf-8")
    assert main(["--config-dir", str(ROOT / "config"), "--config", str(site), "check-config"]) == 1
    err = capsys.readouterr().err
    assert "prompts.all_busy.zh: the busy prompt of queue 'hotline' must tell callers its message_key '2'" in err
    assert err.rstrip().endswith(f"configuration invalid: 2 problem(s) in {HOTLINE}")
    missing = tmp_path / "missing.yaml"
    site.write_text(f"ivr:\n  hotline_flow: {missing}\n", encoding="utf-8")
    assert main(["--config-dir", str(ROOT / "config"), "--config", str(site), "check-config"]) == 1
    assert f"ivr.hotline_flow: cannot read {missing}: No such file or directory" in capsys.readouterr().err
    assert main(["--config-dir", str(ROOT / "config"), "--config", str(site), "run"]) == 1
    assert f"ivr.hotline_flow: cannot read {missing}: No such file or directory" in capsys.readouterr().err


def test_the_daemon_does_not_start_on_an_invalid_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.cli import main

    flow = tmp_path / "flow.yaml"
    flow.write_text("flow: x\nlanguages: [zh]\n", encoding="utf-8")
    site = tmp_path / "site.yaml"
    site.write_text(f"ivr:\n  hotline_flow: {flow}\n", encoding="utf-8")
    assert main(["--config-dir", str(ROOT / "config"), "--config", str(site), "run"]) == 1
    err = capsys.readouterr().err
    assert f"{flow}:1:1: missing field 'entries'" in err and f"not started: 3 problem(s) in {flow}" in err
