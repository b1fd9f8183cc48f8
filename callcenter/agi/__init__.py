"""FastAGI: the sans-IO codec (:mod:`.codec`) and the Twisted server (:mod:`.server`).

The public names of both modules are re-exported here; ``tests/unit/test_agi_codec.py``
locks the list.
"""

from callcenter.agi.codec import (
    MAX_COMMAND_BYTES,
    AgiApplicationNotFoundError,
    AgiArgumentError,
    AgiCommand,
    AgiCommandError,
    AgiEnvironment,
    AgiError,
    AgiHangup,
    AgiHangupError,
    AgiItem,
    AgiProtocolError,
    AgiReader,
    AgiReply,
    AgiSessionClosedError,
    AgiTimeoutError,
    GetDataResult,
    PlaybackResult,
    check_reply,
    format_command,
    parse_environment,
    parse_reply_line,
    parse_script,
    quote_argument,
)
from callcenter.agi.server import (
    AgiHandler,
    AgiSession,
    FastAgiFactory,
    FastAgiProtocol,
)

__all__ = [
    "MAX_COMMAND_BYTES",
    "AgiApplicationNotFoundError",
    "AgiArgumentError",
    "AgiCommand",
    "AgiCommandError",
    "AgiEnvironment",
    "AgiError",
    "AgiHandler",
    "AgiHangup",
    "AgiHangupError",
    "AgiItem",
    "AgiProtocolError",
    "AgiReader",
    "AgiReply",
    "AgiSession",
    "AgiSessionClosedError",
    "AgiTimeoutError",
    "FastAgiFactory",
    "FastAgiProtocol",
    "GetDataResult",
    "PlaybackResult",
    "check_reply",
    "format_command",
    "parse_environment",
    "parse_reply_line",
    "parse_script",
    "quote_argument",
]
