"""Read Asterisk configuration files with pyst2's parser (``asterisk.config``).

pyst2's ``Config`` understands Asterisk's ``[section]`` / ``key = value`` / ``;`` format,
including repeated section names (PJSIP's endpoint, auth and aor share one name). Its
``load`` leaves the file open, so this module reads the text itself and hands the lines to
pyst2's ``parse``; ``#include`` / ``#tryinclude`` lines are skipped, not followed. Used to
read back generated files (lab status, tests).
"""

from __future__ import annotations

from pathlib import Path

from asterisk.config import Config

__all__ = ["AsteriskConfig", "parse_config", "read_config"]

AsteriskConfig = dict[str, list[dict[str, str]]]
"""Section name -> one dict of items per section of that name, in file order."""


class _TextConfig(Config):  # type: ignore[misc]
    def __init__(self, text: str, filename: str) -> None:
        self._text = text
        super().__init__(filename)

    def load(self) -> None:
        # Asterisk's directives (#include, #tryinclude, #exec) name other files: not followed,
        # and blanked (pyst2 would take them for a malformed "name = value"); lines keep their numbers
        self.raw_lines = ["\n" if line.lstrip().startswith("#") else line
                          for line in self._text.splitlines(keepends=True)]


def parse_config(text: str, filename: str = "<text>") -> AsteriskConfig:
    """Parse Asterisk configuration text into sections."""
    config = _TextConfig(text, filename)
    sections: AsteriskConfig = {}
    for category in config.categories:
        items: dict[str, str] = {}
        for item in category.items:
            # pyst2 splits on the first "=" and keeps the spaces; "=>" leaves a ">".
            value = item.value.strip()
            if value.startswith(">"):
                value = value[1:].strip()
            items[item.name.strip()] = value
        sections.setdefault(category.name.strip(), []).append(items)
    return sections


def read_config(path: Path) -> AsteriskConfig:
    """Read and parse one Asterisk configuration file."""
    return parse_config(path.read_text(encoding="utf-8"), str(path))
