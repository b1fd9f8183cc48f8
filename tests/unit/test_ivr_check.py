"""`callcenter ivr check`: graph defects of a flow reported with file and line, exit status."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from callcenter.ivr import FlowError, check_file, load_flow
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
