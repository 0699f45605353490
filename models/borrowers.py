"""A loan's rows as the loan book import writes and reads them: the encrypted borrower, the booked terms.

    borrower_row(keyring, record, match_hash)   the ``borrowers`` row: each personal value
                                                encrypted (bound to its contract and field) and masked
    stored_details(keyring, contract_no, row)   the borrower back, decrypted
    details_hash(keyring, details)              the keyed digest that tells a changed borrower
                                                from the same one without decrypting
    booked_terms(loan_row)                      a ``loans`` row as the contract's terms, by name

The clear values never reach a table; see ``models.crypto`` for the keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from models.crypto import Keyring
from states import borrower as personal
from states.borrower import BorrowerDetails
from states.events import canonical_json
from states.loan import TERM_FIELDS
from states.loanfile import PERSONAL, LoanRecord
from states.money import from_fen


def borrower_row(keyring: Keyring, record: LoanRecord, match_hash: str) -> dict[str, Any]:
    """The ``borrowers`` row of a record: personal values only encrypted and masked."""
    details, contract_no = record.borrower, record.contract_no
    row: dict[str, Any] = {
        "contract_no": contract_no,
        "borrower_id": record.terms.borrower_id,
        "national_id_hash": match_hash,
        "key_id": keyring.key_id,
        "timezone": details.timezone,
        "details_hash": details_hash(keyring, details),
        "booked_at": datetime.now(timezone.utc),
        "amended_at": None,
    }
    for name, value in details.personal().items():
        row[f"{name}_enc"] = None if value is None else keyring.encrypt(value, f"{contract_no}/{name}")
        row[f"{name}_masked"] = personal.mask(name, value)
    return row


def stored_details(keyring: Keyring, contract_no: str, row: Mapping[str, Any]) -> BorrowerDetails:
    """The borrower of a ``borrowers`` row, decrypted (a ciphertext moved from another row is refused)."""
    clear = {
        name: None if row[f"{name}_enc"] is None else keyring.decrypt(row[f"{name}_enc"], f"{contract_no}/{name}")
        for name in PERSONAL
    }
    return BorrowerDetails(**clear, timezone=row["timezone"])


def details_hash(keyring: Keyring, details: BorrowerDetails) -> str:
    return keyring.digest("borrower details", canonical_json({**details.personal(), "timezone": details.timezone}))


def booked_terms(loan_row: Mapping[str, Any]) -> dict[str, Any]:
    """The terms of a ``loans`` row by name (an amount's column is ``<name>_fen``), as ``LoanTerms.record()`` names them."""
    return {name: loan_row[name] if name in loan_row else from_fen(loan_row[f"{name}_fen"]) for name in TERM_FIELDS}
