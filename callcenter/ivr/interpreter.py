"""The IVR interpreter: walks a :class:`~callcenter.ivr.flow.Flow` without doing any I/O.

``Interpreter(flow, facts)`` gives the next :class:`Step` to perform from
:meth:`Interpreter.start`; the caller performs it (plays a sound, collects digits,
sets a variable) and hands the outcome to :meth:`Interpreter.resume`, which returns the
following step. Terminal steps (:class:`Queue`, :class:`Transfer`, :class:`Callback`,
:class:`Voicemail`, :class:`Hangup`) end the walk. Menu and collect retries, invalid
input and timeouts are handled here: after ``retries`` failed attempts the walk goes
to the node's ``fallback`` (the flow's by default). :attr:`Interpreter.path` is the
walk so far (node ids, ``node=digits`` for input, ``node:timeout``/``node:invalid``),
for the call record's ``ivr_path``.

Pure: no Twisted, no clock; "now" comes in the :class:`CallFacts`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from callcenter.ivr.flow import (
    BranchNode,
    CallbackNode,
    CollectNode,
    Condition,
    Flow,
    HangupNode,
    MenuNode,
    MessageNode,
    Node,
    PlayNode,
    QueueNode,
    SetNode,
    TransferNode,
    VoicemailNode,
)
from callcenter.storage.records import dialable

__all__ = [
    "CallFacts",
    "Callback",
    "Collect",
    "DigitsEntered",
    "Hangup",
    "Interpreter",
    "InterpreterError",
    "Play",
    "Queue",
    "SetVariable",
    "Step",
    "Transfer",
    "Voicemail",
]

_MAX_STEPS_WITHOUT_IO = 1000


class InterpreterError(RuntimeError):
    """The interpreter was driven wrongly (resume before start, wrong result type...)."""


@dataclass(frozen=True)
class CallFacts:
    """What the branch conditions look at, gathered by the caller before the walk.

    ``now`` must be timezone-aware, in the site's time zone: business hours and holidays
    are read in its local time. ``variables`` seeds the flow's variables (e.g. a language
    chosen in an earlier part of the call).
    """

    caller_id: str
    now: dt.datetime
    caller_known: bool = False
    vip: bool = False
    customer_name: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Play:
    """Play ``prompt`` in ``language``; resume with None."""

    prompt: str
    language: str
    sound: str
    stock: str | None


@dataclass(frozen=True)
class Collect:
    """Play ``prompt`` and collect up to ``max_digits`` DTMF digits; resume with :class:`DigitsEntered`."""

    prompt: str
    language: str
    sound: str
    stock: str | None
    max_digits: int
    timeout_seconds: int


@dataclass(frozen=True)
class SetVariable:
    """Set a channel variable; resume with None."""

    name: str
    value: str


@dataclass(frozen=True)
class Queue:
    """Terminal: put the caller into ``queue`` with ``priority`` (higher is answered first).

    ``busy``: the prompt for a caller about to wait (no agent of the queue free), played by
    the runner when the queue is busy; ``message``: the prompt the dialplan plays if the
    caller leaves the queue unanswered, before the tone of their message. None: none.
    """

    queue: str
    priority: int
    busy: Play | None = None
    message: Play | None = None


@dataclass(frozen=True)
class Transfer:
    """Terminal: send the call to ``target`` (an extension or dial string)."""

    target: str


@dataclass(frozen=True)
class Callback:
    """Terminal: the caller asked to be called back on ``number``."""

    number: str


@dataclass(frozen=True)
class Voicemail:
    """Terminal: let the caller leave a message in ``mailbox``."""

    mailbox: str


@dataclass(frozen=True)
class Hangup:
    """Terminal: end the call."""


Step = Play | Collect | SetVariable | Queue | Transfer | Callback | Voicemail | Hangup
TERMINAL_STEPS = (Queue, Transfer, Callback, Voicemail, Hangup)


@dataclass(frozen=True)
class DigitsEntered:
    """What a :class:`Collect` step got: the digits (maybe ``""``) and whether input timed out."""

    digits: str
    timed_out: bool


class Interpreter:
    """One walk through a flow for one call; see the module docstring."""

    def __init__(self, flow: Flow, facts: CallFacts, entry: str = "main") -> None:
        if facts.now.tzinfo is None or facts.now.utcoffset() is None:
            raise ValueError("CallFacts.now must be timezone-aware (the site's time zone)")
        if entry not in flow.entries:
            raise ValueError(f"flow {flow.name!r} has no entry {entry!r}")
        self.flow = flow
        self.facts = facts
        self.entry = entry
        self.variables: dict[str, str] = dict(facts.variables)
        self._path: list[str] = []
        self._node: Node | None = None
        self._pending: list[Step] = []
        self._attempt = 0
        self._awaiting: Step | None = None
        self._done = False

    # ---------------------------------------------------------------- public

    @property
    def path(self) -> tuple[str, ...]:
        """The walk so far: node ids, ``node=digits``, ``node:timeout``, ``node:invalid``."""
        return tuple(self._path)

    @property
    def language(self) -> str:
        """The caller's language: the flow's language variable, else the flow's first language."""
        value = self.variables.get(self.flow.language_variable)
        return value if value in self.flow.languages else self.flow.default_language

    @property
    def finished(self) -> bool:
        """True once a terminal step was returned."""
        return self._done

    def start(self) -> Step:
        """The first step of the walk."""
        if self._node is not None or self._done:
            raise InterpreterError("start() called twice")
        return self._enter(self.flow.entries[self.entry])

    def resume(self, result: DigitsEntered | None = None) -> Step:
        """Hand in the outcome of the last step; get the next one."""
        step = self._awaiting
        if step is None:
            raise InterpreterError("resume() without a step in progress (call start() first)"
                                   if not self._done else "the walk has ended")
        if isinstance(step, Collect) != isinstance(result, DigitsEntered):
            raise InterpreterError(f"resume() after {type(step).__name__} needs "
                                   f"{'DigitsEntered' if isinstance(step, Collect) else 'None'}")
        self._awaiting = None
        if self._pending:
            return self._emit(self._pending.pop(0))
        node = self._node
        if isinstance(result, DigitsEntered):
            assert isinstance(node, (MenuNode, CollectNode))
            return self._input(node, result)
        assert node is not None
        return self._after(node)

    # -------------------------------------------------------------- internals

    def _emit(self, step: Step) -> Step:
        if isinstance(step, TERMINAL_STEPS):
            self._done = True
        else:
            self._awaiting = step
        return step

    def _play(self, prompt: str) -> Play:
        return Play(prompt, self.language, self.flow.sound(prompt, self.language),
                    self.flow.prompts[prompt].stock)

    def _collect(self, node: MenuNode | CollectNode) -> Collect:
        max_digits = 1 if isinstance(node, MenuNode) else node.max_digits
        return Collect(node.prompt, self.language, self.flow.sound(node.prompt, self.language),
                       self.flow.prompts[node.prompt].stock, max_digits, node.timeout_seconds)

    def _enter(self, node_id: str) -> Step:
        """Walk through nodes that need no I/O (branch) until one yields a step."""
        for _ in range(_MAX_STEPS_WITHOUT_IO):
            node = self.flow.nodes[node_id]
            self._node = node
            self._path.append(node_id)
            if isinstance(node, BranchNode):
                node_id = next((c.next for c in node.cases if self._holds(c.when)), node.default)
                continue
            return self._emit(self._first_step(node))
        raise InterpreterError(f"flow {self.flow.name!r}: more than {_MAX_STEPS_WITHOUT_IO} branches "
                               "without a step (loop between branch nodes)")

    def _first_step(self, node: Node) -> Step:
        if isinstance(node, PlayNode):
            return self._play(node.prompt)
        if isinstance(node, (MenuNode, CollectNode)):
            self._attempt = 0
            return self._collect(node)
        if isinstance(node, SetNode):
            self.variables[node.variable] = node.value
            return SetVariable(node.variable, node.value)
        if isinstance(node, QueueNode):
            busy = node.busy_prompt or self.flow.busy_prompt
            message = node.queue_message_prompt or self.flow.queue_message_prompt
            return Queue(node.queue, node.priority, busy=self._play(busy) if busy else None,
                         message=self._play(message) if message else None)
        if isinstance(node, TransferNode):
            return Transfer(node.target)
        if isinstance(node, CallbackNode):
            number = self.variables.get(node.number_variable or "", "") or self.facts.caller_id
            return Callback(number)
        if isinstance(node, VoicemailNode):
            return Voicemail(node.mailbox)
        if isinstance(node, MessageNode):
            self._pending = [Hangup()]
            return self._play(node.prompt)
        assert isinstance(node, HangupNode), node
        return Hangup()

    def _after(self, node: Node) -> Step:
        """The node's own step is done (play/set, or a valid collect): go on."""
        if isinstance(node, (PlayNode, SetNode, CollectNode)):
            return self._enter(node.next)
        raise InterpreterError(f"node {node.id!r} ({node.kind}) has no next step")

    def _input(self, node: MenuNode | CollectNode, result: DigitsEntered) -> Step:
        digits = result.digits
        if isinstance(node, MenuNode):
            digits = digits[:1]
            valid = digits in node.choices
        else:
            valid = node.accepts(digits)
        if valid:
            self._path.append(f"{node.id}={digits}")
            if isinstance(node, MenuNode):
                return self._enter(node.choices[digits])
            self.variables[node.variable] = digits
            return self._emit(SetVariable(node.variable, digits))
        timed_out = not digits
        self._path.append(f"{node.id}:{'timeout' if timed_out else 'invalid'}")
        self._attempt += 1
        if self._attempt > node.retries:
            return self._enter(node.fallback)
        prompt = (node.timeout_prompt or self.flow.timeout_prompt) if timed_out else \
                 (node.invalid_prompt or self.flow.invalid_prompt)
        retry = self._collect(node)
        if prompt is None:
            return self._emit(retry)
        self._pending = [retry]
        return self._emit(self._play(prompt))

    def _holds(self, when: Condition) -> bool:
        facts = self.facts
        checks: list[bool] = []
        if when.caller_known is not None:
            checks.append(facts.caller_known == when.caller_known)
        if when.caller_dialable is not None:
            checks.append(bool(dialable(facts.caller_id)) == when.caller_dialable)
        if when.vip is not None:
            checks.append(facts.vip == when.vip)
        holiday = facts.now.date() in self.flow.holidays
        if when.holiday is not None:
            checks.append(holiday == when.holiday)
        if when.open is not None:
            is_open = self.flow.open_at(facts.now)
            checks.append(is_open == when.open)
        if when.variable is not None:
            checks.append(self.variables.get(when.variable) == when.equals)
        return all(checks)
