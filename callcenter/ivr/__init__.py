"""IVR flows: YAML flow files, their validator, a sans-IO interpreter and the FastAGI runner.

``load_flow(path)`` reads and checks a flow; ``Interpreter(flow, facts)`` walks it without
I/O; ``run_flow(agi, flow, facts)`` performs the walk on a call. See ``docs/ivr.md``.
The runner (which imports the AGI codec) is not imported here; use
``callcenter.ivr.runner``.
"""

from __future__ import annotations

from callcenter.ivr.check import check_file, check_flow, load_flow
from callcenter.ivr.flow import Flow, FlowError, FlowProblem, read_flow
from callcenter.ivr.interpreter import (
    Callback,
    CallFacts,
    Collect,
    DigitsEntered,
    Hangup,
    Interpreter,
    InterpreterError,
    Play,
    Queue,
    SetVariable,
    Step,
    Transfer,
    Voicemail,
)

__all__ = [
    "CallFacts",
    "Callback",
    "Collect",
    "DigitsEntered",
    "Flow",
    "FlowError",
    "FlowProblem",
    "Hangup",
    "Interpreter",
    "InterpreterError",
    "Play",
    "Queue",
    "SetVariable",
    "Step",
    "Transfer",
    "Voicemail",
    "check_file",
    "check_flow",
    "load_flow",
    "read_flow",
]
