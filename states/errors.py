"""The one base class of every error a user can cause.

Each layer names its own refusals (``MoneyError``, ``PolicyError``,
``DomainError``, the store's ``StoreError`` ...), and every one of them is a
``UserError``: the CLI and the Prefect flows catch this one class and report
its message in one line (the message names the bad value and what is
accepted). Anything else that escapes is a bug, and shows as one.
"""

from __future__ import annotations


class UserError(ValueError):
    """Input or a request the rules refuse; the message says which value and why."""


class DomainError(UserError):
    """A command the collection rules refuse for this case."""
