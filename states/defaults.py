"""The defaults a contract, a borrower and an installation take when nobody says otherwise, written once.

``LoanTerms``, ``BorrowerDetails``, the loan file's optional columns, the
collection policy and the settings all take their default from here, so the
README's column table, a loan built in code and a row that leaves the column
empty cannot drift apart.
"""

from __future__ import annotations

from decimal import Decimal

# Mainland China keeps one time zone: the lender's "today" and a borrower's local hours alike.
DEFAULT_TIMEZONE = "Asia/Shanghai"
# Penalty rate = contract rate x (1 + uplift): 50 % above the contract rate.
DEFAULT_PENALTY_UPLIFT = Decimal("0.5")
