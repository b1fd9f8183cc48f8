"""What agents see of customers' telephone numbers (pure).

Leads are bought and destroyed after use, and a number an agent can copy is a lead that can
walk out of the door. With ``privacy.agent_numbers: masked`` (config/callcenter.yaml,
docs/agents.md "Customers' numbers") agents see ``138****8000`` on their page, in the API's
answers to them and on their softphone's display; they still call, call back and text by the
call, the customer or the lead, and the engine dials the number. Team leads and managers see
numbers whole.

:func:`mask_number` is the one rule; ``[cc-agent-display]`` (dialplans/agents.conf) applies
the same rule to the number an agent's phone shows, in dialplan functions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["AGENT_NUMBERS", "HISTORY_FIELDS", "HISTORY_TEXT_FIELDS", "PHONE_FIELDS", "TEXT_FIELDS", "mask_number",
           "mask_numbers_in", "masked_json"]

#: ``privacy.agent_numbers``: ``masked`` (the shipped choice) or ``full``.
AGENT_NUMBERS: Final = ("masked", "full")

#: The hidden middle of a number: always four stars, so the length says nothing either.
_STARS: Final = "****"

#: A telephone number as the engine stores and shows one: digits, an optional leading +.
_NUMBER: Final = re.compile(r"^\+?[0-9]+$")

#: JSON fields that hold a customer's number in the API's answers (masked for agents).
PHONE_FIELDS: Final = frozenset({"phone", "caller", "caller_id", "number"})


def mask_number(number: str) -> str:
    """``13800138000`` -> ``138****8000``: a number's first three and last four characters
    when it is longer than ten, else (seven to ten) its last four; shorter ones (service
    numbers, extensions) and anything that is no number (``anonymous``, a name) as they are."""
    if not _NUMBER.match(number) or len(number) <= 6:
        return number
    if len(number) > 10:
        return number[:3] + _STARS + number[-4:]
    return _STARS + number[-4:]


#: A number inside a text: seven digits or more (an optional +), not part of a word or a
#: longer string of digits (a ticket such as GD20231027001 is left alone).
_IN_TEXT: Final = re.compile(r"(?<![0-9A-Za-z+])\+?[0-9]{7,}(?![0-9A-Za-z])")


def mask_numbers_in(text: str) -> str:
    """``text`` with every telephone number in it masked (an error or a message that names
    the number called)."""
    return _IN_TEXT.sub(lambda found: mask_number(found.group()), text)


#: JSON fields whose texts are read-only there and may hold numbers, masked inside for
#: agents: a lead file's other columns (``extra``), a call's hops (``transfers``:
#: ``1001>outside:139...``), and under the earlier calls and follow-ups (``calls``,
#: ``follow_ups``) their notes (``description``) and outcomes (``outcome``: a call-back
#: request names the number to call). The live call's notes and the customer's
#: are what an agent edits: whole, as on the page (a masked copy written back would lose them).
TEXT_FIELDS: Final = frozenset({"extra", "transfers"})
HISTORY_FIELDS: Final = frozenset({"calls", "follow_ups"})
HISTORY_TEXT_FIELDS: Final = frozenset({"description", "outcome"})  # "callback requested: 139..."


def masked_json(value: Any, *, _text: bool = False, _history: bool = False) -> Any:
    """``value`` (decoded JSON) with every string under a :data:`PHONE_FIELDS` key masked,
    and the numbers in an ``error`` and in the read-only texts (:data:`TEXT_FIELDS`, and
    :data:`HISTORY_TEXT_FIELDS` under :data:`HISTORY_FIELDS`), at any depth; a new value,
    the given one unchanged."""
    if isinstance(value, str):
        return mask_numbers_in(value) if _text else value
    if isinstance(value, Mapping):
        masked = {}
        for key, item in value.items():
            if key in PHONE_FIELDS and isinstance(item, str):
                masked[key] = mask_number(item)
            elif key == "error" and isinstance(item, str):
                masked[key] = mask_numbers_in(item)
            else:
                text = _text or key in TEXT_FIELDS or _history and key in HISTORY_TEXT_FIELDS
                masked[key] = masked_json(item, _text=text, _history=_history or key in HISTORY_FIELDS)
        return masked
    if isinstance(value, list | tuple):
        return [masked_json(item, _text=_text, _history=_history) for item in value]
    return value
