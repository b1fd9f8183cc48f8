"""IVR prompt rendering: flow parsing, digests, build planning, manifest, real espeak-ng/sox."""

from __future__ import annotations

import argparse
import os
import shutil
import wave
from pathlib import Path

import pytest

from callcenter import prompts_cli
from callcenter.prompts import (
    ASTERISK_SOUNDS,
    MANIFEST_NAME,
    PromptError,
    PromptSource,
    PromptText,
    Toolchain,
    ToolMissing,
    asterisk_sounds,
    build_prompts,
    find_recording,
    format_manifest,
    load_flow_prompts,
    load_flows,
    parse_manifest,
    plan_build,
    render_prompt,
)

HOTLINE = """\
flow: hotline
entry: welcome
prompts:
  welcome:
    zh: "您好，欢迎致电"
    en: "  Welcome to the hotline. "
  menu:
    en: "Press one for sales."
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def prompt(text: str = "Hello", flow: str = "f", prompt_id: str = "p",
           language: str = "en") -> PromptText:
    return PromptText(flow, prompt_id, language, text, "f.yaml:1:1")


def need_tools() -> None:
    """Skip a real-render test without espeak-ng/sox, except in CI where it must run."""
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        reason = f"{', '.join(missing)} not installed (apt-get install espeak-ng sox)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must render prompts: {reason}", pytrace=False)
        pytest.skip(reason)


def wav_format(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()


# ------------------------------------------------------------------ flow parsing


def test_flow_prompts_name_the_files_asterisk_plays(tmp_path: Path) -> None:
    """Each prompt language becomes custom/<flow>/<prompt>-<lang>; other flow keys are ignored."""
    found = load_flow_prompts(write(tmp_path / "hotline.yaml", HOTLINE))
    assert [(p.playback_name, p.voice, p.text) for p in found] == [
        ("custom/hotline/welcome-zh", "cmn", "您好，欢迎致电"),
        ("custom/hotline/welcome-en", "en", "Welcome to the hotline."),
        ("custom/hotline/menu-en", "en", "Press one for sales."),
    ]
    assert found[0].output == "custom/hotline/welcome-zh.wav"
    assert found[0].where.endswith("hotline.yaml:5:5")


def test_flow_without_prompts_has_none(tmp_path: Path) -> None:
    """A flow that plays only built-in sounds yields no prompt files and no error."""
    assert load_flow_prompts(write(tmp_path / "a.yaml", "flow: plain\n")) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prompts: {}\n", "a.yaml:1:1: missing top-level 'flow"),
        ("- flow\n", "a.yaml:1:1: a flow file must be a mapping"),
        ("flow: ../etc\n", "a.yaml:1:1: flow name '../etc' must be"),
        ("flow: x\nprompts: [a]\n", "a.yaml:2:1: 'prompts' must be a mapping"),
        ("flow: x\nprompts:\n  hi: text\n", "a.yaml:3:3: prompt 'hi' must map languages"),
        ("flow: x\nprompts:\n  hi/x: {en: a}\n", "a.yaml:3:3: prompt id 'hi/x' must be"),
        ("flow: x\nprompts:\n  hi:\n    fr: Bonjour\n",
         "a.yaml:4:5: prompt 'hi': unknown language 'fr' (known: zh, en)"),
        ("flow: x\nprompts:\n  hi:\n    en: '  '\n",
         "a.yaml:4:5: prompt 'hi' language 'en': the text must be a non-empty string"),
        ("flow: x\nprompts:\n  hi: {en: a}\n  hi: {en: b}\n", "a.yaml:4:3: duplicate key 'hi'"),
        ("flow: [x\n", "a.yaml:2:1: invalid YAML"),
    ],
)
def test_bad_flow_errors_name_file_line_and_prompt(tmp_path: Path, text: str, message: str) -> None:
    """Every unusable flow is refused with file:line:column and the offending prompt id."""
    with pytest.raises(PromptError) as info:
        load_flow_prompts(write(tmp_path / "a.yaml", text))
    assert message in str(info.value)


def test_same_flow_name_in_two_files_is_refused(tmp_path: Path) -> None:
    """Two files claiming one flow name would overwrite each other's prompts."""
    write(tmp_path / "a.yaml", "flow: x\nprompts: {hi: {en: a}}\n")
    write(tmp_path / "b.yml", "flow: x\nprompts: {bye: {en: b}}\n")
    write(tmp_path / "notes.txt", "not a flow")
    with pytest.raises(PromptError, match=r"b\.yml:2:.*flow 'x' is already defined in .*a\.yaml"):
        load_flows(tmp_path)


def test_missing_flows_directory_is_named(tmp_path: Path) -> None:
    """A wrong --flows path is reported as such, not as 'no prompts'."""
    with pytest.raises(PromptError, match="no such flows directory"):
        load_flows(tmp_path / "nope")


# ------------------------------------------------------------------ digests and planning


def test_digest_follows_text_voice_and_recording() -> None:
    """The content hash changes exactly when the audio would change."""
    base = PromptSource(prompt("Hello"))
    assert base.digest == PromptSource(prompt("Hello", flow="other")).digest
    assert base.digest != PromptSource(prompt("Hello!")).digest
    assert base.digest != PromptSource(prompt("Hello", language="zh")).digest
    recorded = PromptSource(prompt("Hello"), Path("r/p-en.wav"), "ab" * 32)
    assert recorded.digest != base.digest
    assert recorded.digest != PromptSource(prompt("Hello"), Path("r/p-en.wav"), "cd" * 32).digest
    assert recorded.digest == PromptSource(prompt("Other"), Path("x/p-en.wav"), "ab" * 32).digest


def test_plan_skips_unchanged_renders_changed_missing_and_forced() -> None:
    """Unchanged prompts whose file exists are skipped; anything else is rendered."""
    same = PromptSource(prompt("same", prompt_id="a"))
    changed = PromptSource(prompt("new text", prompt_id="b"))
    missing = PromptSource(prompt("gone file", prompt_id="c"))
    fresh = PromptSource(prompt("never built", prompt_id="d"))
    manifest = {same.prompt.output: same.digest, changed.prompt.output: "old",
                missing.prompt.output: missing.digest}
    existing = {same.prompt.output, changed.prompt.output}
    plan = plan_build([same, changed, missing, fresh], manifest, existing)
    assert plan.skip == (same,)
    assert plan.render == (changed, missing, fresh)
    assert plan.remove == ()
    forced = plan_build([same, changed, missing, fresh], manifest, existing, force=True)
    assert forced.skip == () and len(forced.render) == 4


def test_plan_removes_outputs_no_flow_produces_any_more() -> None:
    """A prompt dropped from its flow has its old file removed (only files we wrote)."""
    kept = PromptSource(prompt(prompt_id="kept"))
    manifest = {kept.prompt.output: kept.digest, "custom/f/dropped-en.wav": "x"}
    plan = plan_build([kept], manifest, {kept.prompt.output})
    assert plan.remove == ("custom/f/dropped-en.wav",)


def test_plan_refuses_two_sources_for_one_file() -> None:
    """Two prompts mapping to one output file are an error, not a silent overwrite."""
    with pytest.raises(PromptError, match="custom/f/p-en.wav is also produced by"):
        plan_build([PromptSource(prompt("a")), PromptSource(prompt("b"))], {}, set())


def test_manifest_round_trip_and_bad_manifests() -> None:
    """The manifest reads back what was written; garbage or escaping paths are refused."""
    entries = {"custom/f/b-en.wav": "2", "custom/f/a-zh.wav": "1"}
    assert parse_manifest(format_manifest(entries), "m.json") == entries
    with pytest.raises(PromptError, match="m.json: not a prompts manifest .invalid JSON"):
        parse_manifest("{", "m.json")
    with pytest.raises(PromptError, match="m.json: not a prompts manifest"):
        parse_manifest('{"files": {"custom/a.wav": 1}}', "m.json")
    with pytest.raises(PromptError, match="entry '../../etc/passwd' is not under custom/"):
        parse_manifest('{"files": {"../../etc/passwd": "x"}}', "m.json")
    with pytest.raises(PromptError, match="is not under custom/"):
        parse_manifest('{"files": {"custom/../../x.wav": "x"}}', "m.json")


def test_recording_override_is_found_wav_first(tmp_path: Path) -> None:
    """recordings/F/P-L.wav (else .gsm) overrides synthesis; other names do not."""
    p = prompt(flow="hotline", prompt_id="welcome", language="zh")
    assert find_recording(tmp_path, p) is None
    gsm = write(tmp_path / "recordings/hotline/welcome-zh.gsm", "")
    write(tmp_path / "recordings/hotline/welcome-en.wav", "")
    assert find_recording(tmp_path, p) == gsm
    wav = write(tmp_path / "recordings/hotline/welcome-zh.wav", "")
    assert find_recording(tmp_path, p) == wav


def test_missing_tool_names_the_debian_package() -> None:
    """Without espeak-ng or sox the error says which package to install."""
    with pytest.raises(ToolMissing, match=r"espeak-ng not found on PATH: install the Debian "
                       r"package 'espeak-ng' \(apt-get install espeak-ng\)"):
        Toolchain.find(which=lambda name: None if name == "espeak-ng" else f"/usr/bin/{name}")
    with pytest.raises(ToolMissing, match="apt-get install sox"):
        Toolchain.find(which=lambda name: None)
    only_sox = Toolchain.find(need_espeak=False, which=lambda name: f"/bin/{name}"
                              if name == "sox" else None)
    assert only_sox == Toolchain(sox="/bin/sox", espeak_ng=None)


def test_build_with_nothing_to_render_needs_no_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flows directory without prompts builds (an empty manifest) even with no tools."""
    write(tmp_path / "flows/plain.yaml", "flow: plain\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    out = tmp_path / "out"
    report = build_prompts(tmp_path / "flows", out)
    assert (report.rendered, report.skipped, report.removed) == ([], [], [])
    assert parse_manifest((out / MANIFEST_NAME).read_text(), "m") == {}


# ------------------------------------------------------------------ failing tools


def test_failing_tool_names_the_prompt_and_leaves_no_partial_file(tmp_path: Path) -> None:
    """A tool that exits non-zero gives an error naming file, prompt and tool output."""
    tool = write(tmp_path / "bin/espeak-ng", "#!/bin/sh\necho 'voice not found' >&2\nexit 3\n")
    tool.chmod(0o755)
    target = tmp_path / "out/custom/f/p-en.wav"
    with pytest.raises(PromptError) as info:
        render_prompt(PromptSource(prompt()), target, Toolchain(sox="/bin/false", espeak_ng=str(tool)))
    assert str(info.value) == ("f.yaml:1:1: prompt 'p' (en): espeak-ng failed (exit 3): "
                               "voice not found")
    assert list(target.parent.iterdir()) == []


def test_hanging_tool_is_stopped_by_the_timeout(tmp_path: Path) -> None:
    """A tool that never ends is killed after the timeout with a clear error."""
    tool = write(tmp_path / "bin/espeak-ng", "#!/bin/sh\nexec sleep 30\n")
    tool.chmod(0o755)
    with pytest.raises(PromptError, match=r"espeak-ng took longer than 0.3 s"):
        render_prompt(PromptSource(prompt()), tmp_path / "out/p-en.wav",
                      Toolchain(sox="/bin/false", espeak_ng=str(tool)), timeout=0.3)


def test_asterisk_own_sounds_only_for_languages_debian_does_not_ship(tmp_path: Path) -> None:
    """zh gets app_queue's announcement sounds and Asterisk's Chinese number files; en has stock ones."""
    assert asterisk_sounds(["en", "en"]) == []
    zh = {p.prompt_id: p for p in asterisk_sounds(["en", "zh", "zh"])}
    assert set(zh) == set(ASTERISK_SOUNDS["zh"])
    # what say.c's zh syntax and app_queue play (their default file names)
    for name in ("queue-youarenext", "queue-thereare", "queue-callswaiting", "queue-holdtime", "queue-minutes",
                 "queue-minute", "queue-seconds", "queue-thankyou", "queue-less-than", "digits/0", "digits/10",
                 "digits/90", "digits/hundred", "digits/thousand", "digits/wan", "digits/yi",
                 # and what a caller leaving a message hears (dialplans/hotline.conf)
                 "vm-intro", "vm-msgsaved", "vm-goodbye"):
        assert name in zh
    assert (zh["digits/10"].text, zh["digits/20"].text, zh["digits/9"].text) == ("十", "二十", "九")
    three = zh["digits/3"]
    assert (three.output, three.playback_name, three.voice) == ("zh/digits/3.wav", "digits/3", "cmn")
    recording = write(tmp_path / "flows/recordings/asterisk/zh/digits/3.wav", "RIFF")
    assert find_recording(tmp_path / "flows", three) == recording
    assert parse_manifest(format_manifest({"zh/digits/3.wav": "ab", "custom/f/p-zh.wav": "cd"}), "m") == {
        "zh/digits/3.wav": "ab", "custom/f/p-zh.wav": "cd"}
    with pytest.raises(PromptError, match="'etc/passwd' is not under custom/, zh/, en/"):
        parse_manifest(format_manifest({"etc/passwd": "ab"}), "m")


# ------------------------------------------------------------------ real espeak-ng + sox

ZH_ASTERISK_OUTPUTS = sorted(f"zh/{sound}.wav" for sound in ASTERISK_SOUNDS["zh"])



def test_real_render_of_zh_and_en_is_8khz_mono_16bit(tmp_path: Path) -> None:
    """espeak-ng + sox really produce WAVs Asterisk plays: 8000 Hz, mono, 16-bit, not empty."""
    need_tools()
    write(tmp_path / "flows/hotline.yaml", HOTLINE)
    out = tmp_path / "sounds"
    report = build_prompts(tmp_path / "flows", out)
    assert sorted(s.prompt.output for s in report.rendered) == [
        "custom/hotline/menu-en.wav", "custom/hotline/welcome-en.wav",
        "custom/hotline/welcome-zh.wav", *ZH_ASTERISK_OUTPUTS]
    for name in ("welcome-zh", "welcome-en"):
        rate, channels, width, frames = wav_format(out / f"custom/hotline/{name}.wav")
        assert (rate, channels, width) == (8000, 1, 2)
        assert frames > 8000 * 0.5  # more than half a second of speech
    # a flow speaking zh gets Asterisk's own queue sounds and numbers in zh (en: Debian's)
    for name in ("queue-youarenext", "queue-thereare", "digits/7", "digits/20"):
        rate, channels, width, frames = wav_format(out / f"zh/{name}.wav")
        assert (rate, channels, width) == (8000, 1, 2) and frames > 8000 * 0.2
    assert not (out / "en").exists()
    assert sorted(p.name for p in (out / "custom/hotline").iterdir()) == [
        "menu-en.wav", "welcome-en.wav", "welcome-zh.wav"]  # no temporary files left


def test_second_build_skips_unchanged_and_rerenders_only_edits(tmp_path: Path) -> None:
    """Only edited prompts are re-rendered; dropped prompts lose their file; --force renders all."""
    need_tools()
    flow = write(tmp_path / "flows/hotline.yaml", HOTLINE)
    out = tmp_path / "sounds"
    build_prompts(tmp_path / "flows", out)
    welcome_zh = out / "custom/hotline/welcome-zh.wav"
    before = welcome_zh.stat().st_mtime_ns

    again = build_prompts(tmp_path / "flows", out)
    assert again.rendered == [] and len(again.skipped) == 3 + len(ZH_ASTERISK_OUTPUTS)
    assert welcome_zh.stat().st_mtime_ns == before

    flow.write_text(HOTLINE.replace("Press one for sales.", "Press two for support.")
                    .replace("  menu:", "  menu:\n    zh: 按一号键").replace(
                        '    en: "  Welcome to the hotline. "\n', ""), encoding="utf-8")
    edited = build_prompts(tmp_path / "flows", out)
    assert sorted(s.prompt.output for s in edited.rendered) == [
        "custom/hotline/menu-en.wav", "custom/hotline/menu-zh.wav"]
    assert edited.removed == ["custom/hotline/welcome-en.wav"]
    assert not (out / "custom/hotline/welcome-en.wav").exists()
    assert set(parse_manifest((out / MANIFEST_NAME).read_text(), "m")) == {
        "custom/hotline/welcome-zh.wav", "custom/hotline/menu-en.wav",
        "custom/hotline/menu-zh.wav", *ZH_ASTERISK_OUTPUTS}

    forced = build_prompts(tmp_path / "flows", out, force=True)
    assert len(forced.rendered) == 3 + len(ZH_ASTERISK_OUTPUTS) and forced.skipped == []

    # the flow no longer speaks zh: its zh prompts and Asterisk's zh sounds go
    flow.write_text('flow: hotline\nprompts:\n  menu: {en: Press two.}\n', encoding="utf-8")
    english = build_prompts(tmp_path / "flows", out)
    assert set(english.removed) == {"custom/hotline/welcome-zh.wav", "custom/hotline/menu-zh.wav",
                                     *ZH_ASTERISK_OUTPUTS}
    assert not (out / "zh/queue-thereare.wav").exists()


def test_recorded_override_is_converted_instead_of_synthesized(tmp_path: Path) -> None:
    """A studio recording (16 kHz stereo here) replaces the synthetic voice, converted to 8 kHz mono."""
    need_tools()
    write(tmp_path / "flows/hotline.yaml", HOTLINE)
    recording = tmp_path / "flows/recordings/hotline/welcome-zh.wav"
    recording.parent.mkdir(parents=True)
    with wave.open(str(recording), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"\x10\x00\xf0\xff" * 16000 * 2)  # 2.0 s
    out = tmp_path / "sounds"
    build_prompts(tmp_path / "flows", out)
    rate, channels, width, frames = wav_format(out / "custom/hotline/welcome-zh.wav")
    assert (rate, channels, width, frames) == (8000, 1, 2, 16000)  # 2.0 s at 8 kHz

    with wave.open(str(recording), "wb") as wav:  # a new take is picked up
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * 8000)
    rebuilt = build_prompts(tmp_path / "flows", out)
    assert [s.prompt.output for s in rebuilt.rendered] == ["custom/hotline/welcome-zh.wav"]
    assert wav_format(out / "custom/hotline/welcome-zh.wav")[3] == 8000


def test_cli_prints_rendered_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`callcenter prompts build` reports each file and its totals; a bad flow exits 1."""
    need_tools()
    write(tmp_path / "flows/short.yaml", "flow: short\nprompts:\n  hi: {en: Hi, zh: 你好}\n")
    parser = argparse.ArgumentParser()
    prompts_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    argv = ["prompts", "build", "--flows", str(tmp_path / "flows"), "--out", str(tmp_path / "o")]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"rendered {tmp_path / 'o/custom/short/hi-en.wav'}" in out
    assert f"rendered {tmp_path / 'o/zh/queue-thankyou.wav'}" in out
    n = 2 + len(ZH_ASTERISK_OUTPUTS)
    assert f"prompts: {n} rendered, 0 unchanged, 0 removed" in out
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    assert f"prompts: 0 rendered, {n} unchanged" in capsys.readouterr().out

    write(tmp_path / "flows/short.yaml", "flow: short\nprompts:\n  hi: {de: Hallo}\n")
    assert args.func(args) == 1
    assert "short.yaml:3:8: prompt 'hi': unknown language 'de'" in capsys.readouterr().err


def test_cli_defaults_point_into_the_project() -> None:
    """Without options the flows come from ivr_flows/ and sounds go to var/sounds/."""
    parser = argparse.ArgumentParser()
    prompts_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["prompts", "build"])
    root = Path(__file__).resolve().parents[2]
    assert (args.flows, args.out, args.force) == (root / "ivr_flows", root / "var/sounds", False)
