"""Row finding codes of the licenses kind (users-to-SKU rows): code -> (severity, meaning).

Codes are stable: reports, scripts and the result sheet key off them. ``batch.validate.FINDING_CODES`` is
the union of every kind's table and the shared capacity codes.
"""

from __future__ import annotations

import re

from ...errors import RowFinding, Severity
from ...models import Action
from .plan_checks import FINDING_CODES as PLAN_FINDINGS

_ERR, _WARN, _INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

FINDINGS: dict[str, tuple[Severity, str]] = {
    # the user
    "user-missing": (_ERR, "The row names no user."),
    "user-malformed": (_ERR, "The user cell is neither an email-like user principal name nor an object id (GUID)."),
    "user-not-found": (_ERR, "No user with this UPN, mail or object id exists in the tenant."),
    "user-guest": (_WARN, "The user is a guest (B2B) account; licensing guests is unusual."),
    "user-disabled": (_WARN, "The user's account is disabled (sign-in blocked); the license still takes a seat."),
    # the action and the license
    "action-unknown": (_ERR, "The action cell is not a known word (assign, remove, replace and their synonyms)."),
    "action-missing": (_ERR, "The row gives no usable action (assign, remove or replace)."),
    "replace-incomplete": (_ERR, "A replace row needs both the license to take away and the one to give."),
    "replace-multiple": (_ERR, "A replace row names several licenses to take away or to give; one of each."),
    "from-sku-ignored": (_WARN, "A from-license was given on a row that is not a replace; it is ignored."),
    "priority-invalid": (_WARN, "The priority cell is not a whole number; the row has no priority."),
    "license-missing": (_ERR, "The row names no license."),
    "sku-unknown": (_ERR, "The license is not a known product name, string id or skuId."),
    "sku-not-in-tenant": (_ERR, "The product exists but the tenant has not bought it."),
    "sku-ambiguous": (_ERR, "The name matches several products (e.g. GCC or EEA variants); give the string id."),
    "sku-not-assignable": (_ERR, "The subscription cannot go to users (company-wide, suspended, deleted, locked)."),
    "plan-not-in-sku": (_ERR, "A service plan to disable is not part of that license."),
    "plans-ignored": (_WARN, "Disabled plans were given on a remove row; they are ignored."),
    # usage location (adds only)
    "usage-location-missing": (_ERR, "The user has no usage location and the row gives none; Graph would refuse."),
    "usage-location-invalid": (_ERR, "The usage location given is not an ISO 3166 country code or country name."),
    "usage-location-change": (_WARN, "The row's usage location differs from the user's; the row's will be set."),
    "usage-location-set": (_INFO, "The user has no usage location; the row's will be set before assigning."),
    # what the row asks vs what the user holds
    "unchanged": (_INFO, "The row already matches the tenant: nothing to do."),
    "assign-inherited": (_INFO, "The user inherits this license from a group; a direct assignment is added (no seat)."),
    "remove-not-held": (_INFO, "The user does not hold the license to remove: the desired state already holds."),
    "remove-inherited": (_ERR, "The license comes only from a group; it cannot be removed from the user directly."),
    "remove-still-inherited": (_WARN, "The direct license is removed but the user keeps it through a group."),
    "replace-from-not-held": (_ERR, "The user does not hold the license to replace."),
    "replace-from-inherited": (_ERR, "The license to replace comes only from a group; it cannot be removed directly."),
    "replace-same-sku": (_ERR, "The row replaces a license with itself."),
    "replace-reenables-plans": (_WARN, "Plans disabled in the old license are enabled in the new one."),
    # rows against each other
    "duplicate-row": (_ERR, "An earlier row already asks the same for this user and license."),
    "conflicting-rows": (_ERR, "Rows ask contradictory things for the same user and license (or usage location)."),
    # service plans on the user's result (plan_checks, over the dated rules in rules.py)
    **PLAN_FINDINGS,
}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_UPN = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_ADDS = (Action.ASSIGN, Action.REPLACE)
#: subscribedSku.capabilityStatus values whose seats can still be assigned (Warning = grace period).
_ASSIGNABLE_STATUS = frozenset({"Enabled", "Warning"})


def _finding(code: str, message: str, fix: str, row: int | None, column: str | None = None) -> RowFinding:
    return RowFinding(code, FINDINGS[code][0], message, fix, row, column)


def _is_error(f: RowFinding) -> bool:
    return f.severity is Severity.ERROR


def is_user_key(key: str) -> bool:
    """True when ``key`` looks like a user principal name / email address or an object id (GUID)."""
    return bool(_UPN.match(key) or _GUID.match(key))

