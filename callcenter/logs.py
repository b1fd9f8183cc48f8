"""Structured log lines for the daemon.

Every line is ``time level namespace event key=value ...`` (``text``) or one JSON object
(``json``). Components log with :class:`twisted.logger.Logger` and pass fields as keyword
arguments (``log.info("ami.connected", host=..., port=...)``); this module only formats.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from zope.interface import provider

__all__ = ["format_json", "format_text", "log_observer", "start_logging"]

_LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}
_SKIP = {"log_logger", "log_source", "log_io", "log_time", "log_level", "log_namespace", "log_format",
         "log_flattened", "log_trace", "log_failure", "log_system", "format", "message", "isError",
         "time", "system", "why", "failure", "log_text"}


def _fields(event: dict[str, Any]) -> dict[str, Any]:
    """Fields not already shown by the event's format string."""
    fmt = event.get("log_format") or ""
    return {k: v for k, v in event.items()
            if k not in _SKIP and not k.startswith("log_") and "{" + k not in fmt}


def _message(event: dict[str, Any]) -> str:
    text = formatEvent(event) if event.get("log_format") else " ".join(str(m) for m in event.get("message", ()))
    failure = event.get("log_failure")
    if failure is not None:
        text += f" error={failure.getErrorMessage()!r}\n{failure.getTraceback()}"
    return text


def format_text(event: dict[str, Any]) -> str:
    """One human-readable line: ``time level namespace message key=value ...``."""
    level = event.get("log_level", LogLevel.info)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event.get("log_time", time.time())))
    fields = " ".join(f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in _fields(event).items())
    parts = [stamp, level.name.upper(), event.get("log_namespace", "-"), _message(event)]
    if fields:
        parts.append(fields)
    return " ".join(parts)


def format_json(event: dict[str, Any]) -> str:
    """One JSON object per line."""
    level = event.get("log_level", LogLevel.info)
    record = {
        "time": event.get("log_time", time.time()),
        "level": level.name,
        "namespace": event.get("log_namespace", "-"),
        "message": _message(event),
        **{k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v) for k, v in _fields(event).items()},
    }
    return json.dumps(record, ensure_ascii=False)


def log_observer(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> ILogObserver:
    """An observer writing events at ``level`` and above to ``stream`` (stderr) as ``fmt`` lines."""
    out = stream or sys.stderr
    formatter: Callable[[dict[str, Any]], str] = format_json if fmt == "json" else format_text

    @provider(ILogObserver)
    def observer(event: dict[str, Any]) -> None:
        out.write(formatter(event) + "\n")
        out.flush()

    predicate = LogLevelFilterPredicate(defaultLogLevel=_LEVELS.get(level, LogLevel.info))
    return FilteringLogObserver(observer, [predicate])


def start_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> ILogObserver:
    """Send Twisted's global log to ``stream`` (stderr) as structured lines."""
    observer = log_observer(level, fmt, stream)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    return observer
