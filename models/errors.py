"""Errors the store raises; each message names the case, value or constraint involved."""

from __future__ import annotations

from states.errors import UserError


class StoreError(UserError):
    """Base class of the case store's errors (a user error: the message names the case or value)."""


class ConcurrencyError(StoreError):
    """Another writer changed the case first: its stored version is not the one this change was made from.

    Nothing of the transaction was written. Reloading the case and running
    the command again is safe (the daily close does exactly that on retry).
    """

    def __init__(self, case_id: str, expected: int | None, actual: int | None, detail: str = ""):
        self.case_id, self.expected, self.actual = case_id, expected, actual
        found = "no such case" if actual is None else f"version {actual}"
        message = f"case {case_id}: changed by another writer (expected version {expected}, found {found})"
        super().__init__(message + (f"; {detail}" if detail else ""))


class CaseNotFound(StoreError, LookupError):
    """No case with the id or contract number given."""


class DuplicatePayment(StoreError):
    """A payment id that is already recorded (payment ids are the bank's or channel's, unique)."""


class TermsConflict(StoreError):
    """A contract number booked before with different terms."""
