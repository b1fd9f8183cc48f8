"""The daemon's log lines (callcenter/logs.py): text and JSON, fields, failures, the level."""

from __future__ import annotations

import io
import json

from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from callcenter.logs import format_json, format_text, log_observer


def _event(**fields: object) -> dict[str, object]:
    return {"log_format": "ami.connected host={host}", "log_level": LogLevel.info, "log_namespace": "callcenter.ami",
            "log_time": 1796601600.0, "host": "127.0.0.1", **fields}


def test_a_text_line_has_time_level_namespace_message_and_the_other_fields() -> None:
    line = format_text(_event(port=5038, note="two words", log_source=None))
    assert line == ("2026-12-07T00:00:00 INFO callcenter.ami ami.connected host=127.0.0.1 port=5038 "
                    "note='two words'")


def test_a_json_line_is_one_object_with_the_fields() -> None:
    record = json.loads(format_json(_event(port=5038, peer=("127.0.0.1", 5038), name="张伟")))
    assert record == {"time": 1796601600.0, "level": "info", "namespace": "callcenter.ami",
                      "message": "ami.connected host=127.0.0.1", "port": 5038, "peer": "('127.0.0.1', 5038)",
                      "name": "张伟"}


def test_a_failure_brings_its_error_and_traceback() -> None:
    try:
        raise ValueError("bad frame")
    except ValueError:
        failure = Failure()
    line = format_text(_event(log_failure=failure, log_level=LogLevel.error))
    assert " ERROR callcenter.ami ami.connected host=127.0.0.1 error='bad frame'\n" in line
    assert "Traceback" in line and "ValueError: bad frame" in line
    assert "bad frame" in json.loads(format_json(_event(log_failure=failure)))["message"]


def test_the_level_filters_and_the_format_is_chosen() -> None:
    out = io.StringIO()
    log = Logger(namespace="callcenter.test", observer=log_observer("warn", "json", stream=out))
    log.info("hidden.below_warn")
    log.error("dialer.config_rejected path={path}", path="config/dialer.yaml", line=12)
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert (record["level"], record["namespace"], record["message"], record["line"]) == (
        "error", "callcenter.test", "dialer.config_rejected path=config/dialer.yaml", 12)
