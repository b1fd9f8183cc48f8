"""YAML loading that remembers where every value came from.

Configuration errors must name the file, the line and the key. PyYAML's composer keeps
a mark (line, column) on every node; this module turns the node tree into plain Python
data plus a :class:`Locations` map from key paths to those marks, refuses duplicate keys
(PyYAML silently keeps the last one), and merges site overrides over the shipped defaults
while keeping each value's own location.

Whatever is wrong with a file comes out as one :class:`YamlSourceError` with its location:
a syntax error, bytes that are not UTF-8 (a file saved as GBK), a character YAML forbids,
and a value PyYAML's constructors cannot build (the date ``2026-02-30``, ``!!int "x"``),
which they raise as a bare ``ValueError`` (or ``KeyError``...) with no line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "Location",
    "Locations",
    "Path_",
    "SourceProblem",
    "YamlSourceError",
    "decode",
    "dotted",
    "load_yaml",
    "merge",
    "parse_yaml",
]

Path_ = tuple[str | int, ...]
"""A key path inside a document: ``("asterisk", "ami", "port")`` or ``("agents", 3, "id")``."""


def dotted(path: Path_) -> str:
    """``path`` as messages name it: ``asterisk.ami.port``, ``agents[3].id`` (empty for the root)."""
    return ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")


@dataclass(frozen=True)
class Location:
    """Where a value was written: file, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class SourceProblem:
    """One error in a YAML source (configuration, dialer settings, IVR flow): where, which
    key (a dotted path; empty for the whole file) and what is wrong."""

    location: Location
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.key}: {self.message}" if self.key else f"{self.location}: {self.message}"


class YamlSourceError(ValueError):
    """A file that is not valid YAML (or holds a duplicate key, or a value YAML cannot
    build), with its location and, when the error is in a value, that value's key."""

    def __init__(self, location: Location, message: str, key: str = "") -> None:
        self.location = location
        self.message = message
        self.key = key
        super().__init__(str(self.problem))

    @property
    def problem(self) -> SourceProblem:
        """The error as one problem of a source (``file:line:column: key: message``)."""
        return SourceProblem(self.location, self.key, self.message)


class Locations:
    """Key path -> :class:`Location` for one merged configuration."""

    def __init__(self, default_file: str) -> None:
        self._map: dict[Path_, Location] = {}
        self.default_file = default_file

    def set(self, path: Path_, location: Location) -> None:
        self._map[path] = location

    def find(self, path: Path_) -> Location:
        """The location of ``path``, or of its nearest written ancestor."""
        probe = path
        while True:
            found = self._map.get(probe)
            if found is not None:
                return found
            if not probe:
                return Location(self.default_file, 1, 1)
            probe = probe[:-1]

    def update(self, other: Locations) -> None:
        self._map.update(other._map)

    def drop_under(self, path: Path_) -> None:
        """Forget locations below ``path`` (a list replaced whole by an override)."""
        n = len(path)
        for key in [k for k in self._map if len(k) > n and k[:n] == path]:
            del self._map[key]


def _mark(node: yaml.Node, file: str) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _construct(node: yaml.Node, path: Path_, file: str, locs: Locations, loader: yaml.SafeLoader) -> Any:
    locs.set(path, _mark(node, file))
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _object(key_node, path, file, loader)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise YamlSourceError(_mark(key_node, file), f"key {key!r} must be a string", dotted(path))
            key = str(key)
            if key in result:
                raise YamlSourceError(_mark(key_node, file), f"duplicate key {key!r}")
            child_path = (*path, key)
            result[key] = _construct(value_node, child_path, file, locs, loader)
            locs.set(child_path, _mark(key_node, file))
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*path, index), file, locs, loader) for index, item in enumerate(node.value)
        ]
    return _object(node, path, file, loader)


#: What a scalar of each tag must be, for messages.
_KINDS = {
    "tag:yaml.org,2002:int": "a valid integer",
    "tag:yaml.org,2002:float": "a valid number",
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:timestamp": "a valid date",
}


def _object(node: yaml.Node, path: Path_, file: str, loader: yaml.SafeLoader) -> Any:
    """PyYAML's object for ``node`` (a scalar, or a mapping key), its failures located.

    The safe constructors raise plain ``ValueError`` (``2026-02-30``: day is out of range
    for month; ``!!int "x"``), ``KeyError`` (``!!bool maybe``) or ``AttributeError``
    (``!!timestamp nope``) with no mark: caught here and reported at the node, under the
    key of ``path``. The ones that raise a located ``ConstructorError`` (``!!binary``
    that is not base64) go on to :func:`parse_yaml`'s handler.
    """
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        kind = _KINDS.get(node.tag, f"a valid {node.tag.rsplit(':', 1)[-1]} value")
        message = f"{node.value!r} is not {kind}" if isinstance(node, yaml.ScalarNode) else f"not {kind}"
        if node.tag == "tag:yaml.org,2002:timestamp" and isinstance(exc, ValueError) and str(exc):
            message += f" ({exc})"  # datetime says which part: "month must be in 1..12"
        if isinstance(node, yaml.ScalarNode) and node.style is None and _implicit_tag(loader, node) == node.tag:
            message += "; write it in quotes if it is text"  # YAML read a plain word as a date or number
        raise YamlSourceError(_mark(node, file), message, dotted(path)) from None


def _implicit_tag(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    """The tag YAML gives ``node``'s text written plain (not ``!!int "x"``): quotes would make it a string."""
    resolve = loader.resolve  # PyYAML's resolver is untyped
    tag: str = resolve(yaml.ScalarNode, node.value, (True, False))  # type: ignore[no-untyped-call]
    return tag


def decode(data: bytes, file: str) -> str:
    """``data``, the content of ``file``, as text: YAML sources are UTF-8 (a byte-order mark
    is fine).

    A file saved in another encoding (GBK by Notepad, Latin-1) is refused at its first
    byte that is not UTF-8, by line and column (in characters), rather than with Python's
    byte offset and no file.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start:exc.start].decode("utf-8")) + 1  # all before the first bad byte is UTF-8
        raise YamlSourceError(Location(file, line, column),
                              f"not UTF-8 text: {exc.reason}; save the file as UTF-8") from None


def load_yaml(path: Path, display_name: str | None = None) -> tuple[Any, Locations]:
    """Load one YAML file; return its data and the location of every key.

    Raises :class:`YamlSourceError` naming the file and line for syntax errors, duplicate
    keys, bad values and bytes that are not UTF-8, and ``OSError`` when the file cannot be
    read.
    """
    return parse_yaml(path.read_bytes(), display_name or str(path))


def parse_yaml(text: str | bytes, file: str) -> tuple[Any, Locations]:
    """Parse the YAML ``text`` of ``file`` (its name in messages); data and key locations.

    ``text`` may be the file's bytes, decoded here by :func:`decode`. Raises
    :class:`YamlSourceError` naming the file and line for syntax errors, duplicate keys,
    values PyYAML cannot build and bytes that are not UTF-8.
    """
    if isinstance(text, bytes):
        text = decode(text, file)
    locs = Locations(file)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character: checked over the whole text at once
        before = text[:exc.position]
        line, column = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        raise YamlSourceError(Location(file, line, column),
                              f"invalid YAML: character #x{exc.character:04X} is not allowed") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, locs
        return _construct(node, (), file, locs, loader), locs
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        column = mark.column + 1 if mark is not None else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlSourceError(Location(file, line, column), f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlSourceError(Location(file, 1, 1), f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def merge(base: Any, override: Any, base_locs: Locations, override_locs: Locations, path: Path_ = ()) -> Any:
    """Deep-merge ``override`` over ``base``: mappings merge, anything else is replaced.

    ``base_locs`` is updated in place so every value keeps the location it came from.
    """
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            child = (*path, key)
            if key in merged:
                merged[key] = merge(merged[key], value, base_locs, override_locs, child)
            else:
                merged[key] = value
                _copy_locs(override_locs, base_locs, child)
        return merged
    base_locs.drop_under(path)
    _copy_locs(override_locs, base_locs, path)
    return override


def _copy_locs(source: Locations, target: Locations, path: Path_) -> None:
    n = len(path)
    for key, loc in source._map.items():
        if key[:n] == path:
            target.set(key, loc)
