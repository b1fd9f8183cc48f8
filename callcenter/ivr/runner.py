"""Run an IVR flow on a call: the interpreter's steps performed over FastAGI.

:func:`run_flow` drives an :class:`~callcenter.ivr.interpreter.Interpreter` with an
AGI session (:class:`~callcenter.agi.server.AgiSession` or anything with the same
methods): ``Play`` -> ``STREAM FILE``, ``Collect`` -> ``GET DATA``, ``SetVariable`` ->
``SET VARIABLE``. The terminal steps are *not* executed in AGI: the runner sets channel
variables and returns, and the dialplan acts on them after ``AGI()`` returns:

* ``CC_IVR_RESULT``: ``queue``, ``transfer``, ``callback``, ``voicemail`` or ``hangup``
* ``CC_QUEUE`` and ``CC_QUEUE_PRIORITY`` (queue; with ``CC_QUEUE_MESSAGE_PROMPT``, the sound
  the dialplan plays if the caller leaves the queue unanswered), ``CC_TRANSFER`` (transfer),
  ``CC_CALLBACK`` (callback number), ``CC_VOICEMAIL`` (mailbox; the dialplan takes a message)
* ``CC_IVR_PATH``: the walk, node ids joined with ``>``
* ``CHANNEL(language)``: the caller's language, for the sounds Asterisk plays itself

A ``Hangup`` step also sends ``HANGUP``. Sounds are ``custom/<flow>/<prompt>-<lang>``;
because ``STREAM FILE`` of a missing file ends the AGI session, the caller passes
``sound_exists`` and the runner plays the prompt's stock sound instead (or skips a
``Play`` that has none). A caller hanging up ends the walk with ``caller_hung_up``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from callcenter.agi.codec import AgiHangupError, GetDataResult, PlaybackResult
from callcenter.ivr.flow import Flow
from callcenter.ivr.interpreter import (
    Callback,
    CallFacts,
    Collect,
    DigitsEntered,
    Hangup,
    Interpreter,
    Play,
    Queue,
    SetVariable,
    Step,
    Transfer,
    Voicemail,
)

__all__ = ["AgiChannel", "IvrOutcome", "run_flow"]

PATH_SEPARATOR = ">"
_SILENT_PROMPT = "silence/1"


class AgiChannel(Protocol):
    """The part of :class:`~callcenter.agi.server.AgiSession` the runner uses."""

    def stream_file(self, name: str, escape_digits: str = "", offset: int | None = None,
                    timeout: float | None = None) -> Awaitable[PlaybackResult]: ...

    def get_data(self, prompt: str, timeout_ms: int | None = None, max_digits: int | None = None,
                 timeout: float | None = None) -> Awaitable[GetDataResult]: ...

    def set_variable(self, name: str, value: str | int, timeout: float | None = None) -> Awaitable[None]: ...

    def hangup(self, channel: str | None = None, timeout: float | None = None) -> Awaitable[None]: ...


@dataclass(frozen=True)
class IvrOutcome:
    """How the walk ended: the terminal step (None when the caller hung up) and the path."""

    step: Queue | Transfer | Callback | Voicemail | Hangup | None
    path: tuple[str, ...]
    variables: dict[str, str]

    @property
    def caller_hung_up(self) -> bool:
        """True when the caller left before the flow reached a terminal node."""
        return self.step is None

    @property
    def path_text(self) -> str:
        """The path as stored in ``CC_IVR_PATH`` and the call record's ``ivr_path``."""
        return PATH_SEPARATOR.join(self.path)


def _always(_sound: str) -> bool:
    return True


def _never(_queue: str) -> bool:
    return False


async def run_flow(
    agi: AgiChannel,
    flow: Flow,
    facts: CallFacts,
    *,
    entry: str = "main",
    sound_exists: Callable[[str], bool] = _always,
    queue_busy: Callable[[str], bool] = _never,
    message_key: Callable[[str], str | None] = lambda queue: None,
    progress: Callable[[tuple[str, ...]], None] = lambda path: None,
) -> IvrOutcome:
    """Walk ``flow`` from ``entry`` on the call behind ``agi``; see the module docstring.

    A walk ending in a queue whose ``queue_busy(queue)`` is true (no agent free to answer)
    plays the queue node's busy prompt first, if it has one. The prompt tells the caller
    the queue's ``message_key(queue)`` leaves a message: pressed during it, the caller is
    not queued (``CC_QUEUE_EXIT`` is ``key``, as for the key pressed while waiting).
    ``progress(path)`` hears the path before each prompt or command: a caller who hangs up
    mid-walk has no channel left to hand it to, and the engine files it from there.

    Errors other than a hangup (a command timeout, a rejected command) propagate; the
    FastAGI server logs them and the dialplan goes on with ``CC_IVR_RESULT`` unset.
    """
    interpreter = Interpreter(flow, facts, entry)
    heard_busy: tuple[str, ...] = ()  # the queue node's busy prompt, played: "<node>:busy" ends the path

    def outcome(step: Queue | Transfer | Callback | Voicemail | Hangup | None) -> IvrOutcome:
        return IvrOutcome(step, interpreter.path + heard_busy, dict(interpreter.variables))

    def sound(step: Play | Collect) -> str | None:
        if sound_exists(step.sound):
            return step.sound
        return step.stock

    step: Step = interpreter.start()
    try:
        while True:
            progress(interpreter.path)
            if isinstance(step, Play):
                name = sound(step)
                if name is not None:
                    await agi.stream_file(name)
                step = interpreter.resume()
            elif isinstance(step, Collect):
                got = await agi.get_data(sound(step) or _SILENT_PROMPT, step.timeout_seconds * 1000,
                                         step.max_digits)
                step = interpreter.resume(DigitsEntered(got.digits, got.timed_out))
            elif isinstance(step, SetVariable):
                await agi.set_variable(step.name, step.value)
                step = interpreter.resume()
            else:
                message = None
                key_pressed = False
                if isinstance(step, Queue):
                    if step.busy is not None and queue_busy(step.queue) and (name := sound(step.busy)):
                        heard_busy = (f"{interpreter.path[-1]}:busy",)
                        key = message_key(step.queue) or ""
                        played = await agi.stream_file(name, key)
                        key_pressed = bool(key) and played.digit == key
                        if key_pressed:
                            heard_busy += (f"{interpreter.path[-1]}:key",)
                    message = sound(step.message) if step.message is not None else None
                await _finish(agi, step, PATH_SEPARATOR.join(interpreter.path + heard_busy), interpreter.language,
                              message)
                if key_pressed:  # dialplans/hotline.conf: straight to the message, not the queue
                    await agi.set_variable("CC_QUEUE_EXIT", "key")
                return outcome(step)
    except AgiHangupError:
        return outcome(None)


async def _finish(agi: AgiChannel, step: Queue | Transfer | Callback | Voicemail | Hangup, path: str,
                  language: str, queue_message: str | None = None) -> None:
    """Hand the terminal step to the dialplan as channel variables.

    The channel's language becomes the caller's, so that the sounds Asterisk itself plays
    from here on (the queue's announcements and their numbers) are looked up in it first
    (``sounds/<language>/...``; docs/prompts.md).
    """
    await agi.set_variable("CHANNEL(language)", language)
    await agi.set_variable("CC_IVR_PATH", path)
    if isinstance(step, Queue):
        await agi.set_variable("CC_QUEUE", step.queue)
        await agi.set_variable("CC_QUEUE_PRIORITY", step.priority)
        if queue_message:
            await agi.set_variable("CC_QUEUE_MESSAGE_PROMPT", queue_message)
        result = "queue"
    elif isinstance(step, Transfer):
        await agi.set_variable("CC_TRANSFER", step.target)
        result = "transfer"
    elif isinstance(step, Callback):
        await agi.set_variable("CC_CALLBACK", step.number)
        result = "callback"
    elif isinstance(step, Voicemail):
        await agi.set_variable("CC_VOICEMAIL", step.mailbox)
        result = "voicemail"
    else:
        result = "hangup"
    await agi.set_variable("CC_IVR_RESULT", result)
    if isinstance(step, Hangup):
        await agi.hangup()
