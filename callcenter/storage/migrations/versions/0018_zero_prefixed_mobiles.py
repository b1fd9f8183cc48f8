"""canonical_phone learnt 0-prefixed mobiles (``013800138000`` is ``13800138000``): the
stored numbers are restated, as revisions 0003 and 0017 did for the rule then.

Landline trunks present an out-of-town mobile with the old long-distance 0. Before, that
spelling was a number of its own: a second customer for one phone, a hotline caller not
found in the CRM, and a do-not-call entry in one spelling that missed a lead in the other
(the dialer compares canonical spellings). The same rewrite as 0003 (customers, leads,
dial attempts and their hashes, the do-not-call list: nothing lost, duplicates named in a
warning or merged as 0003 says) and 0017 (call records) runs again with today's rule.

The downgrade changes nothing: every canonical spelling is a valid spelling before.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VERSIONS = "callcenter.storage.migrations.versions."


def upgrade() -> None:
    """0003's and 0017's rewrites with the current rule (each imports canonical_phone)."""
    importlib.import_module(_VERSIONS + "0003_canonical_phones").upgrade()
    importlib.import_module(_VERSIONS + "0017_call_record_phones").upgrade()


def downgrade() -> None:
    """Nothing to undo (see the module docstring)."""
