"""The texts of a broadcast, pure: the template checked against the site's rules, then
filled for each recipient and measured in SMS parts (docs/sms.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from callcenter.sms.text import (
    SmsPolicy,
    TemplateError,
    check_length,
    prepare_template,
    render,
)

__all__ = ["TICKET_FIELDS", "Composed", "Contact", "compose"]

TICKET_FIELDS = ("ticket", "name", "phone", "agent")
"""The fields of ``sms.ticket_template``: the text an agent sends a caller about their call."""


@dataclass(frozen=True)
class Contact:
    """Someone to text: a lead of a campaign, or a number given as it is."""

    phone: str
    name: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    """The lead's other CSV columns, usable as template fields."""
    lead_id: int | None = None


@dataclass(frozen=True)
class Composed:
    """One message, ready to queue."""

    phone: str
    body: str
    parts: int
    lead_id: int | None


def compose(template: str, policy: SmsPolicy, contacts: Sequence[Contact]) -> list[Composed]:
    """Fill ``template`` for each contact: ``{name}``, ``{phone}`` and the leads' own
    columns (a field a contact lacks is left empty). The signature and the opt-out note
    are added as the policy says. :class:`TemplateError` for a bad template or a text
    longer than ``policy.max_parts`` (naming the recipient): nothing is queued then."""
    allowed = {"name", "phone"}
    for contact in contacts:
        allowed.update(contact.extra)
    full = prepare_template(template, policy, allowed)
    blank = dict.fromkeys(allowed, "")
    out = []
    for contact in contacts:
        fields = {**blank, **contact.extra, "name": contact.name or "", "phone": contact.phone}
        body = render(full, fields)
        try:
            shape = check_length(body, policy)
        except TemplateError as exc:
            who = f"lead {contact.lead_id} ({contact.phone})" if contact.lead_id is not None else contact.phone
            raise TemplateError(f"the text for {who}: {exc}") from None
        out.append(Composed(phone=contact.phone, body=body, parts=shape.parts, lead_id=contact.lead_id))
    return out
