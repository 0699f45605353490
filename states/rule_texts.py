"""The words of the accrual rules, one template per rule code (the one copy of each text).

A ``ChargesAccrued`` payload (schema 3) stores a rule as its code and the
numbers it names (``states.events``); the text an explanation shows is this
template filled in, byte for byte the text the accrual wrote. ``{}`` takes
the rule's one argument: the penalty uplift, the cap regime, or the
installment number (for a posting, its own installment unless stored).
"""

from __future__ import annotations

# What an accrual stretch's segment accrued, by rule code.
SEGMENT_RULES: dict[str, str] = {
    "c": "contract rate on principal not yet due",
    "p": "contract rate x (1 + {}) on overdue principal",
    "k": "penalty rate on overdue contract interest (the contract allows compounding)",
    "cap": "legal cap ({}) on principal outstanding",
}

# Why a charge was posted, by rule code.
POSTING_RULES: dict[str, str] = {
    "f": "late fee for missed installment {}",
    "p": "penalty interest on overdue principal",
    "k": "compound interest on overdue contract interest",
    "c": "contract interest of installment {} falls due",
    "y": "contract interest accrued to payoff, installment {}",
}

# A charge held above the cap by an earlier posting, let through now (never stored: the explanation says it).
RELEASE_RULE = "held above the cap earlier, the oldest first"
