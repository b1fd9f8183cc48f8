"""YAML loading that remembers where every value came from.

Configuration errors must name the file, the line and the key. PyYAML's composer keeps
a mark (line, column) on every node; this module turns the node tree into plain Python
data plus a :class:`Locations` map from key paths to those marks, refuses duplicate keys
(PyYAML silently keeps the last one), and merges site overrides over the shipped defaults
while keeping each value's own location.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Location", "Locations", "Path_", "SourceProblem", "YamlSourceError", "load_yaml", "merge", "parse_yaml"]

Path_ = tuple[str | int, ...]
"""A key path inside a document: ``("asterisk", "ami", "port")`` or ``("agents", 3, "id")``."""


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
    """A file that is not valid YAML (or holds a duplicate key), with its location."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


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
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise YamlSourceError(_mark(key_node, file), f"key {key!r} must be a string")
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
    return loader.construct_object(node, deep=True)


def load_yaml(path: Path, display_name: str | None = None) -> tuple[Any, Locations]:
    """Load one YAML file; return its data and the location of every key.

    Raises :class:`YamlSourceError` naming the file and line for syntax errors and
    duplicate keys, and ``OSError`` when the file cannot be read.
    """
    return parse_yaml(path.read_text(encoding="utf-8"), display_name or str(path))


def parse_yaml(text: str, file: str) -> tuple[Any, Locations]:
    """Parse the YAML ``text`` of ``file`` (its name in messages); data and key locations.

    Raises :class:`YamlSourceError` naming the file and line for syntax errors and
    duplicate keys.
    """
    locs = Locations(file)
    loader = yaml.SafeLoader(text)
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
