"""The IVR flow validator: graph checks over a :class:`~callcenter.ivr.flow.Flow`.

:func:`check_flow` reports, with the file and line of the offending field:

* dangling targets (``next``, a menu choice, ``fallback``, an entry naming no node),
* unreachable nodes (not reachable from any entry),
* missing prompts (a node names a prompt the flow does not define) and prompts that
  lack one of the flow's languages,
* loops without exit: nodes from which no terminal node (queue, transfer, callback,
  voicemail, message, hangup) can be reached.

:func:`check_message_keys` checks the flow against the queues (``callcenter check-config``):
a busy prompt tells callers the key that leaves a message, which config/queues.yaml sets.

:func:`load_flow` reads a file and runs both the schema and graph checks: the one
way the engine should load a flow. ``callcenter ivr check FILE...`` is
:func:`callcenter.ivr.cli.run` on top of :func:`check_file`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from pathlib import Path

from callcenter.ivr.flow import (
    FLOW_PROMPTS,
    Flow,
    FlowError,
    FlowProblem,
    QueueNode,
    SetNode,
    read_flow,
)

__all__ = ["check_file", "check_flow", "check_message_keys", "load_flow"]


def check_flow(flow: Flow) -> list[FlowProblem]:
    """Every graph problem of ``flow``, in file order."""
    problems: list[FlowProblem] = []
    problems += _dangling(flow)
    problems += _prompts(flow)
    problems += _languages(flow)
    reachable = _reachable(flow)
    for node_id, node in flow.nodes.items():
        if node_id not in reachable:
            problems.append(FlowProblem(node.location, f"nodes.{node_id}",
                                        "unreachable node: no entry leads here"))
    problems += _loops(flow, reachable)
    return sorted(problems, key=lambda p: (p.location.line, p.location.column))


def _dangling(flow: Flow) -> list[FlowProblem]:
    problems = []
    for entry, node_id in flow.entries.items():
        if node_id not in flow.nodes:
            problems.append(FlowProblem(flow.entry_locations[entry], f"entries.{entry}",
                                        f"dangling target: no node {node_id!r}"))
    if flow.fallback not in flow.nodes:
        problems.append(FlowProblem(flow.fallback_location, "fallback",
                                    f"dangling target: no node {flow.fallback!r}"))
    for node in flow.nodes.values():
        for target in node.targets:
            if target.node not in flow.nodes and target.node != flow.fallback:
                problems.append(FlowProblem(target.location, target.field,
                                            f"dangling target: no node {target.node!r}"))
    return problems


def _prompts(flow: Flow) -> list[FlowProblem]:
    problems = []
    for node in flow.nodes.values():
        for ref in node.prompt_refs:
            if ref.prompt not in flow.prompts:
                problems.append(FlowProblem(ref.location, ref.field, f"missing prompt {ref.prompt!r}"))
    for key in FLOW_PROMPTS:
        name = getattr(flow, key)
        if name is not None and name not in flow.prompts:
            problems.append(FlowProblem(flow.location, key, f"missing prompt {name!r}"))
    for prompt in flow.prompts.values():
        for lang in flow.languages:
            if lang not in prompt.texts:
                problems.append(FlowProblem(prompt.location, f"prompts.{prompt.name}",
                                            f"prompt has no text in language {lang!r}"))
        for lang in prompt.texts:
            if lang not in flow.languages:
                problems.append(FlowProblem(prompt.location, f"prompts.{prompt.name}.{lang}",
                                            f"language {lang!r} is not in the flow's languages"))
    return problems


def _languages(flow: Flow) -> list[FlowProblem]:
    problems = []
    for node in flow.nodes.values():
        if isinstance(node, SetNode) and node.variable == flow.language_variable and node.value not in flow.languages:
            problems.append(FlowProblem(node.location, f"nodes.{node.id}.value",
                                        f"language {node.value!r} is not in the flow's languages"))
    return problems


def _reachable(flow: Flow) -> set[str]:
    seen: set[str] = set()
    todo = deque(n for n in flow.entries.values() if n in flow.nodes)
    while todo:
        node_id = todo.popleft()
        if node_id in seen:
            continue
        seen.add(node_id)
        todo.extend(t.node for t in flow.nodes[node_id].targets if t.node in flow.nodes)
    return seen


def _loops(flow: Flow, reachable: set[str]) -> list[FlowProblem]:
    """Reachable nodes from which no terminal node can be reached, one problem per group."""
    incoming: dict[str, set[str]] = {n: set() for n in flow.nodes}
    for node in flow.nodes.values():
        for target in node.targets:
            if target.node in incoming:
                incoming[target.node].add(node.id)
    exits: set[str] = set()
    todo = deque(n.id for n in flow.nodes.values() if n.terminal)
    while todo:
        node_id = todo.popleft()
        if node_id in exits:
            continue
        exits.add(node_id)
        todo.extend(incoming[node_id])
    stuck = [n for n in flow.nodes if n in reachable and n not in exits]
    problems = []
    done: set[str] = set()
    for start in stuck:
        if start in done:
            continue
        group: list[str] = []
        todo = deque([start])
        while todo:
            node_id = todo.popleft()
            if node_id in done:
                continue
            done.add(node_id)
            group.append(node_id)
            todo.extend(t.node for t in flow.nodes[node_id].targets if t.node in flow.nodes)
        node = flow.nodes[start]
        problems.append(FlowProblem(node.location, f"nodes.{start}",
                                    "loop without exit: no queue, transfer, callback, voicemail, message "
                                    f"or hangup is reachable from {' -> '.join(group)}"))
    return problems


def load_flow(path: Path, display_name: str | None = None) -> Flow:
    """Read ``path`` and check it; raise :class:`FlowError` listing every problem."""
    flow = read_flow(path, display_name)
    problems = check_flow(flow)
    if problems:
        raise FlowError(problems)
    return flow


def check_file(path: Path, display_name: str | None = None) -> list[FlowProblem]:
    """Every problem of the flow file (schema first; graph checks when the schema is valid)."""
    try:
        return check_flow(read_flow(path, display_name))
    except FlowError as exc:
        return list(exc.problems)


#: "press 2", "按2": a key the text tells the caller to press
_KEY_SAID = re.compile(r"(?:press|按)\s*([0-9*#])", re.IGNORECASE)
_KEY_WORDS: Mapping[str, tuple[str, ...]] = {"*": ("*", "星号", "star"), "#": ("#", "井号", "pound", "hash")}


def check_message_keys(flow: Flow, message_keys: Mapping[str, str | None]) -> list[FlowProblem]:
    """The busy prompts of the flow's queue nodes against each queue's ``message_key``
    (queue -> key, None: none): each language's text must name the queue's key, and no
    other key after "press"/"按" (a caller told to press 2 for a message, on a queue
    whose key is 1, would wait in vain). Prompts without text (stock sounds) are not read."""
    problems: list[FlowProblem] = []
    seen: set[tuple[str, str | None]] = set()
    for node in flow.nodes.values():
        if not isinstance(node, QueueNode) or node.queue not in message_keys:
            continue
        name = node.busy_prompt or flow.busy_prompt
        prompt = flow.prompts.get(name) if name is not None else None
        key = message_keys[node.queue]
        if prompt is None or (prompt.name, key) in seen:
            continue
        seen.add((prompt.name, key))
        for lang, text in prompt.texts.items():
            where = f"prompts.{prompt.name}.{lang}"
            said = {m.group(1) for m in _KEY_SAID.finditer(text)}
            if key is None:
                if said:
                    problems.append(FlowProblem(prompt.location, where, (
                        f"tells callers to press {', '.join(sorted(said))}, but queue {node.queue!r} has no "
                        "message_key (config/queues.yaml)")))
            elif not any(word in text.lower() for word in _KEY_WORDS.get(key, (key,))) or said - {key}:
                problems.append(FlowProblem(prompt.location, where, (
                    f"the busy prompt of queue {node.queue!r} must tell callers its message_key {key!r} "
                    f"(config/queues.yaml){f', not {sorted(said - {key})}' if said - {key} else ''}")))
    return problems
