"""IVR prompts: the audio files Asterisk plays, rendered from the flows' prompt texts.

This module owns turning the ``prompts`` of every IVR flow YAML into 8 kHz, mono, 16-bit
WAV files that Asterisk plays as ``custom/<flow>/<prompt>-<language>``. It reads only two
keys of a flow file (``flow: <name>`` and ``prompts: {<id>: {zh: "...", en: "..."}}``);
the rest of the flow belongs to the IVR interpreter.

Two halves:

- pure planning (no file system, no processes): :func:`prompts_from_flow` validates one
  flow document, :func:`plan_build` decides from content digests and the manifest what
  must be rendered, what is unchanged and what is no longer produced;
  :func:`parse_manifest` / :func:`format_manifest` read and write the manifest text;
- I/O: :func:`build_prompts` loads the flows, looks for recorded overrides
  (``<flows>/recordings/<flow>/<prompt>-<language>.wav`` or ``.gsm``), runs ``espeak-ng``
  and ``sox`` with timeouts, writes each file atomically and keeps
  ``<out>/prompts-manifest.json`` so unchanged prompts are skipped next time.

Asterisk also speaks to callers with its *own* sounds: the queue's announcements (a
caller's place in line, the expected wait) and the numbers in them. Debian ships them in
English only. For every other language the flows use, the build renders them too, from
:data:`ASTERISK_SOUNDS`, as ``<out>/<language>/queue-*.wav`` and
``<out>/<language>/digits/*.wav``: Asterisk looks a sound up in the channel's language
first, and the IVR sets the channel's language to the caller's
(:mod:`callcenter.ivr.runner`). Recorded overrides:
``<flows>/recordings/asterisk/<language>/<sound>.wav`` (or ``.gsm``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.yamlsource import Locations, YamlSourceError, load_yaml

__all__ = [
    "ASTERISK_SOUNDS",
    "LANGUAGES",
    "MANIFEST_NAME",
    "BuildPlan",
    "BuildReport",
    "PromptError",
    "PromptSource",
    "PromptText",
    "ToolMissing",
    "Toolchain",
    "asterisk_sounds",
    "build_prompts",
    "find_recording",
    "format_manifest",
    "load_flow_prompts",
    "load_flows",
    "parse_manifest",
    "plan_build",
    "prompts_from_flow",
    "render_prompt",
]

# Prompt language (as written in the flow and in the file name) -> espeak-ng voice.
LANGUAGES: Mapping[str, str] = {"zh": "cmn", "en": "en"}

# Languages whose Asterisk sounds Debian ships (asterisk-core-sounds-en): not rendered.
STOCK_SOUND_LANGUAGES = frozenset({"en"})

# Asterisk's own sounds a caller in the hotline queue may hear, per language, as texts to
# synthesize. app_queue's announcement plays queue-youarenext (first in line), or
# queue-thereare, the caller's position, queue-callswaiting; then queue-holdtime, the
# minutes and queue-minute(s), the seconds and queue-seconds; then queue-thankyou (with
# announce-position "more": queue-quantity1, the limit, queue-quantity2). Numbers are
# said by Asterisk's Chinese number syntax (say.c, "zh"): digits/0-9, the tens
# digits/10-90, digits/hundred, thousand, wan (10^4), yi (10^8) and minus. A caller who
# leaves a message hears vm-intro (when the flow's message prompt is not rendered, or the
# engine is unreachable), then vm-msgsaved and vm-goodbye (dialplans/hotline.conf).
_ZH_DIGITS = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
ASTERISK_SOUNDS: Mapping[str, Mapping[str, str]] = {
    "zh": {
        "queue-youarenext": "您是下一位，请稍候。",
        "queue-thereare": "您现在排在第",
        "queue-callswaiting": "位。",
        "queue-holdtime": "预计还需等待",
        "queue-less-than": "少于",
        "queue-minute": "分钟。",
        "queue-minutes": "分钟。",
        "queue-seconds": "秒。",
        "queue-thankyou": "感谢您的耐心等待。",
        "queue-quantity1": "您前面的客户超过",
        "queue-quantity2": "位。",
        "vm-intro": "请在提示音后留言，按井号键结束。",
        "vm-msgsaved": "您的留言已保存。",
        "vm-goodbye": "再见。",
        **{f"digits/{d}": word for d, word in _ZH_DIGITS.items()},
        **{f"digits/{d}0": ("" if d == "1" else word) + "十" for d, word in _ZH_DIGITS.items() if d != "0"},
        "digits/hundred": "百",
        "digits/thousand": "千",
        "digits/wan": "万",
        "digits/yi": "亿",
        "digits/minus": "负",
    },
}
ASTERISK_FLOW = "asterisk"  # recorded overrides: <flows>/recordings/asterisk/<lang>/<sound>

# What Asterisk plays without transcoding surprises: 8 kHz, mono, signed 16-bit PCM.
SAMPLE_RATE = 8000
CHANNELS = 1
BITS = 16
SOX_OUTPUT_ARGS = ("-r", str(SAMPLE_RATE), "-c", str(CHANNELS), "-b", str(BITS),
                   "-e", "signed-integer", "-t", "wav")

# Bump when the rendering changes in a way that must re-render every prompt.
RENDER_VERSION = 1

MANIFEST_NAME = "prompts-manifest.json"
RECORDINGS_SUBDIR = "recordings"
RECORDING_SUFFIXES = (".wav", ".gsm")  # first found wins

# Debian package that installs each tool.
TOOL_PACKAGES: Mapping[str, str] = {"espeak-ng": "espeak-ng", "sox": "sox"}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class PromptError(ValueError):
    """A bad flow file, manifest or recording, or a failed render; the message says where."""


class ToolMissing(PromptError):
    """``espeak-ng`` or ``sox`` is not installed; the message names the Debian package."""


@dataclass(frozen=True)
class PromptText:
    """One prompt of one flow in one language, and where it was written."""

    flow: str
    prompt_id: str
    language: str
    text: str
    where: str  # "file:line:column" of the text
    asterisk_sound: bool = False  # one of Asterisk's own sounds (ASTERISK_SOUNDS), not a flow's

    @property
    def playback_name(self) -> str:
        """What the dialplan passes to ``Playback()``: ``custom/F/P-L``, or for one of
        Asterisk's own sounds its stock name (``queue-thereare``: the channel's language
        picks the file)."""
        if self.asterisk_sound:
            return self.prompt_id
        return f"custom/{self.flow}/{self.prompt_id}-{self.language}"

    @property
    def output(self) -> str:
        """The output file, relative to the sounds directory: ``custom/F/P-L.wav``, or
        ``L/<sound>.wav`` for one of Asterisk's own sounds (``zh/digits/3.wav``)."""
        if self.asterisk_sound:
            return f"{self.language}/{self.prompt_id}.wav"
        return f"{self.playback_name}.wav"

    @property
    def voice(self) -> str:
        """The espeak-ng voice of this prompt's language."""
        return LANGUAGES[self.language]


@dataclass(frozen=True)
class PromptSource:
    """A prompt plus, when one exists, the recorded file that overrides synthesis."""

    prompt: PromptText
    recording: Path | None = None
    recording_sha256: str | None = None

    @property
    def digest(self) -> str:
        """Content hash of everything that shapes the output file."""
        if self.recording is not None:
            basis: dict[str, Any] = {"kind": "recording", "sha256": self.recording_sha256,
                                     "suffix": self.recording.suffix.lower()}
        else:
            basis = {"kind": "tts", "voice": self.prompt.voice, "text": self.prompt.text}
        basis.update(version=RENDER_VERSION, rate=SAMPLE_RATE, channels=CHANNELS, bits=BITS)
        encoded = json.dumps(basis, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class BuildPlan:
    """What a build does: render these, skip those (unchanged), remove stale outputs."""

    render: tuple[PromptSource, ...]
    skip: tuple[PromptSource, ...]
    remove: tuple[str, ...]  # outputs (relative paths) in the manifest no flow produces


@dataclass
class BuildReport:
    """What a build did, for the CLI to print."""

    rendered: list[PromptSource] = field(default_factory=list)
    skipped: list[PromptSource] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- pure


def _check_name(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise PromptError(
            f"{where}: {what} {value!r} must be 1-64 letters, digits, '_' or '-' "
            "(it becomes a file name)")
    return value


def prompts_from_flow(data: Any, locations: Locations) -> list[PromptText]:
    """The prompt texts of one flow document (``flow`` and ``prompts`` keys only).

    ``locations`` maps key paths to file/line (see :mod:`callcenter.yamlsource`). A flow
    without ``prompts`` has none. Raises :class:`PromptError` naming the file, line and
    prompt id for anything that cannot become a prompt file.
    """
    if not isinstance(data, dict):
        raise PromptError(f"{locations.find(())}: a flow file must be a mapping with "
                          "'flow' and 'prompts'")
    if "flow" not in data:
        raise PromptError(f"{locations.find(())}: missing top-level 'flow: <name>'")
    flow = _check_name(data["flow"], "flow name", str(locations.find(("flow",))))
    prompts = data.get("prompts")
    if prompts is None:
        return []
    if not isinstance(prompts, dict):
        raise PromptError(f"{locations.find(('prompts',))}: 'prompts' must be a mapping "
                          "of prompt id -> {language: text}")
    result = []
    for prompt_id, texts in prompts.items():
        where = str(locations.find(("prompts", prompt_id)))
        _check_name(prompt_id, "prompt id", where)
        if not isinstance(texts, dict) or not texts:
            raise PromptError(f"{where}: prompt {prompt_id!r} must map languages "
                              f"({', '.join(LANGUAGES)}) to texts")
        for language, text in texts.items():
            text_where = str(locations.find(("prompts", prompt_id, language)))
            if language not in LANGUAGES:
                raise PromptError(f"{text_where}: prompt {prompt_id!r}: unknown language "
                                  f"{language!r} (known: {', '.join(LANGUAGES)})")
            if not isinstance(text, str) or not text.strip():
                raise PromptError(f"{text_where}: prompt {prompt_id!r} language "
                                  f"{language!r}: the text must be a non-empty string")
            result.append(PromptText(flow, prompt_id, language, text.strip(), text_where))
    return result


def asterisk_sounds(languages: Iterable[str]) -> list[PromptText]:
    """Asterisk's own caller-facing sounds for ``languages`` Debian does not ship."""
    result = []
    for language in sorted(set(languages) - STOCK_SOUND_LANGUAGES):
        for sound, text in ASTERISK_SOUNDS.get(language, {}).items():
            where = f"callcenter/prompts.py: ASTERISK_SOUNDS[{language!r}][{sound!r}]"
            result.append(PromptText(ASTERISK_FLOW, sound, language, text, where, asterisk_sound=True))
    return result


def plan_build(
    sources: Sequence[PromptSource],
    manifest: Mapping[str, str],
    existing: Collection[str],
    force: bool = False,
) -> BuildPlan:
    """Decide what to render.

    ``manifest`` maps output paths to the digest they were rendered from; ``existing``
    holds the output paths present on disk. A prompt is skipped when its output exists
    and the manifest records its current digest (never with ``force``). Outputs in the
    manifest that no source produces any more are to be removed.
    """
    seen: dict[str, PromptSource] = {}
    for source in sources:
        other = seen.get(source.prompt.output)
        if other is not None:
            raise PromptError(
                f"{source.prompt.where}: {source.prompt.output} is also produced by "
                f"{other.prompt.where} (two flows named {source.prompt.flow!r}?)")
        seen[source.prompt.output] = source
    render, skip = [], []
    for source in sources:
        output = source.prompt.output
        if not force and output in existing and manifest.get(output) == source.digest:
            skip.append(source)
        else:
            render.append(source)
    remove = tuple(sorted(path for path in manifest if path not in seen))
    return BuildPlan(tuple(render), tuple(skip), remove)


def parse_manifest(text: str, source: str) -> dict[str, str]:
    """The ``{output path: digest}`` entries of a manifest file's text."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PromptError(f"{source}: not a prompts manifest (invalid JSON: {exc}); "
                          "delete it or use --force") from None
    files = data.get("files") if isinstance(data, dict) else None
    if (not isinstance(files, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())):
        raise PromptError(f"{source}: not a prompts manifest (expected "
                          '{"version": 1, "files": {path: sha256}}); delete it')
    roots = ("custom", *LANGUAGES)
    for path in files:
        if Path(path).parts[0] not in roots or ".." in Path(path).parts:
            raise PromptError(f"{source}: entry {path!r} is not under {', '.join(r + '/' for r in roots)}")
    return dict(files)


def format_manifest(entries: Mapping[str, str]) -> str:
    """The manifest file's text for ``{output path: digest}``."""
    return json.dumps({"version": 1, "files": dict(sorted(entries.items()))}, indent=2) + "\n"


# ---------------------------------------------------------------------------- I/O


def load_flow_prompts(path: Path) -> list[PromptText]:
    """The prompts of one flow YAML file."""
    try:
        data, locations = load_yaml(path)
    except YamlSourceError as exc:
        raise PromptError(str(exc)) from None
    except OSError as exc:
        raise PromptError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return prompts_from_flow(data, locations)


def load_flows(flows_dir: Path) -> list[PromptText]:
    """The prompts of every ``*.yaml`` / ``*.yml`` file directly in ``flows_dir``."""
    if not flows_dir.is_dir():
        raise PromptError(f"{flows_dir}: no such flows directory")
    files = sorted(p for p in flows_dir.iterdir()
                   if p.suffix in (".yaml", ".yml") and p.is_file())
    flows: dict[str, Path] = {}
    result: list[PromptText] = []
    for path in files:
        prompts = load_flow_prompts(path)
        for prompt in prompts:
            first = flows.setdefault(prompt.flow, path)
            if first != path:
                raise PromptError(f"{prompt.where}: flow {prompt.flow!r} is already "
                                  f"defined in {first}")
        result.extend(prompts)
    return result


def find_recording(flows_dir: Path, prompt: PromptText) -> Path | None:
    """The recorded override of ``prompt``, if ``recordings/F/P-L.wav`` (or .gsm) exists;
    for one of Asterisk's own sounds ``recordings/asterisk/L/<sound>.wav``."""
    if prompt.asterisk_sound:
        base = flows_dir / RECORDINGS_SUBDIR / ASTERISK_FLOW / prompt.language / prompt.prompt_id
    else:
        base = flows_dir / RECORDINGS_SUBDIR / prompt.flow / f"{prompt.prompt_id}-{prompt.language}"
    for suffix in RECORDING_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sources(flows_dir: Path, prompts: Iterable[PromptText]) -> list[PromptSource]:
    result = []
    for prompt in prompts:
        recording = find_recording(flows_dir, prompt)
        if recording is None:
            result.append(PromptSource(prompt))
        else:
            result.append(PromptSource(prompt, recording, _sha256_file(recording)))
    return result


def _read_manifest(out_dir: Path) -> dict[str, str]:
    path = out_dir / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_manifest(text, str(path))


def _write_manifest(out_dir: Path, entries: Mapping[str, str]) -> None:
    path = out_dir / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(format_manifest(entries), encoding="utf-8")
    tmp.replace(path)


@dataclass(frozen=True)
class Toolchain:
    """Paths of the external tools; :meth:`find` checks they are installed."""

    sox: str
    espeak_ng: str | None  # None when every prompt has a recording

    @classmethod
    def find(cls, need_espeak: bool = True,
             which: Callable[[str], str | None] = shutil.which) -> Toolchain:
        """Locate ``sox`` (and ``espeak-ng`` when needed) on ``PATH``."""

        def locate(name: str) -> str:
            found = which(name)
            if found is None:
                package = TOOL_PACKAGES[name]
                raise ToolMissing(f"{name} not found on PATH: install the Debian package "
                                  f"'{package}' (apt-get install {package})")
            return found

        return cls(sox=locate("sox"), espeak_ng=locate("espeak-ng") if need_espeak else None)


def _run(argv: Sequence[str], what: str, timeout: float, stdin: bytes | None = None) -> None:
    try:
        result = subprocess.run(list(argv), input=stdin, capture_output=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PromptError(f"{what}: {Path(argv[0]).name} took longer than {timeout:g} s") from None
    except OSError as exc:
        raise PromptError(f"{what}: cannot run {argv[0]}: {exc.strerror or exc}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).decode("utf-8", "replace").strip()
        raise PromptError(f"{what}: {Path(argv[0]).name} failed "
                          f"(exit {result.returncode}): {detail or 'no output'}")


def render_prompt(source: PromptSource, target: Path, tools: Toolchain,
                  timeout: float = 60.0) -> None:
    """Write ``target`` (8 kHz mono 16-bit WAV) from the recording or by synthesis.

    The file appears atomically (rendered next to it, then renamed), so Asterisk never
    plays a half-written prompt.
    """
    prompt = source.prompt
    what = f"{prompt.where}: prompt {prompt.prompt_id!r} ({prompt.language})"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = target.with_name(f".{target.stem}.tmp.wav")
    tmp_speech = target.with_name(f".{target.stem}.speech.wav")
    try:
        if source.recording is not None:
            input_args = (["-t", "gsm"] if source.recording.suffix.lower() == ".gsm"
                          else [])
            _run([tools.sox, *input_args, str(source.recording), *SOX_OUTPUT_ARGS,
                  str(tmp_out)], f"{what} from {source.recording}", timeout)
        else:
            if tools.espeak_ng is None:
                raise ToolMissing("espeak-ng not located (Toolchain.find(need_espeak=True))")
            # Text on stdin: a text starting with '-' is never taken for an option.
            _run([tools.espeak_ng, "-v", prompt.voice, "-w", str(tmp_speech), "--stdin"],
                 what, timeout, stdin=prompt.text.encode("utf-8"))
            _run([tools.sox, str(tmp_speech), *SOX_OUTPUT_ARGS, str(tmp_out)], what, timeout)
        tmp_out.replace(target)
    finally:
        for leftover in (tmp_out, tmp_speech):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def build_prompts(
    flows_dir: Path,
    out_dir: Path,
    force: bool = False,
    timeout: float = 60.0,
    tools: Toolchain | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> BuildReport:
    """Render every prompt of every flow in ``flows_dir`` into ``out_dir``.

    Skips prompts whose output exists with an unchanged digest (unless ``force``),
    removes outputs of prompts that were dropped, and keeps ``out_dir/prompts-manifest.json``
    up to date even when a render fails half-way. ``progress(action, output)`` is called
    with "rendered", "skipped" or "removed" as each one happens.
    """
    prompts = load_flows(flows_dir)
    prompts += asterisk_sounds(p.language for p in prompts)
    sources = _sources(flows_dir, prompts)
    manifest = _read_manifest(out_dir)
    existing = {s.prompt.output for s in sources if (out_dir / s.prompt.output).is_file()}
    plan = plan_build(sources, manifest, existing, force)
    report = BuildReport(skipped=list(plan.skip))

    def note(action: str, output: str) -> None:
        if progress is not None:
            progress(action, output)

    for source in plan.skip:
        note("skipped", source.prompt.output)
    if plan.render and tools is None:
        tools = Toolchain.find(need_espeak=any(s.recording is None for s in plan.render))
    entries = dict(manifest)
    try:
        for path in plan.remove:
            with contextlib.suppress(FileNotFoundError):
                (out_dir / path).unlink()
            del entries[path]
            report.removed.append(path)
            note("removed", path)
        for source in plan.render:
            assert tools is not None
            entries.pop(source.prompt.output, None)
            render_prompt(source, out_dir / source.prompt.output, tools, timeout)
            entries[source.prompt.output] = source.digest
            report.rendered.append(source)
            note("rendered", source.prompt.output)
    finally:
        if entries != manifest or not (out_dir / MANIFEST_NAME).exists():
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_manifest(out_dir, entries)
    return report
