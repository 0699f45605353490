"""Upcasting: each event's older payload shapes upgraded on read, never rewritten (the chain
hashes the text as stored). ``UPCASTERS[(type, v)]`` takes a v payload to v + 1;
``states.events.event_from_record`` applies them in turn up to the class's schema version.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from states.vocabulary import LENDER


def upcast_payment_received_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 payments carried no channel; they all came through the bank transfer file."""
    return {**payload, "channel": "bank_transfer"}


def upcast_lawsuit_filed_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 lawsuits were all filed by the close under the decision rule: nothing overridden."""
    return {**payload, "overridden": "", "override_reason": ""}


def upcast_case_opened_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 cases were opened with a schedule computed on actual days; no plan was imported then."""
    return {**payload, "schedule_interest": "actual_days", "plan_imported": False}


def upcast_contact_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 contacts named no maker (they were all the lender's) and asked nothing about the debt."""
    return {**payload, "by": LENDER, "disclosed_debt": False, "asked_to_pay": False}


def upcast_placed_with_agency_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 placements were a rotation over the policy's agency list; bucket and balance were not recorded."""
    rate = Decimal(payload["commission_rate"])
    group = "M7+" if rate == Decimal("0.25") else "M4-M6"
    return {**payload, "strategy": "rotation", "bucket": "", "rate_group": group, "balance_placed": "0.00"}


def upcast_charges_accrued_v1_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 postings cut what lay above the cap for good: they released nothing."""
    return {**payload, "released": []}


def upcast_charges_accrued_v2_v3(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 stored the same values under their field names, rules as prose: its decoder reads it as it is.

    (The stored text is never re-encoded: the chain hashes it as stored.)
    """
    return payload


def upcast_charges_accrued_v3_v4(payload: dict[str, Any]) -> dict[str, Any]:
    """v3 stored ``through`` and every segment's ``exact``: v4's reader reads it as it is, once it is
    seen to hold no row v4 shortened (so a v3 payload is read as strictly as before)."""
    if "segments" in payload:  # a v2 payload, upcast as it is
        return payload
    if "t" not in payload:
        raise KeyError("t")
    for row in payload["s"]:
        if type(row) is not list or len(row) not in (6, 8):
            raise ValueError(f"segment {row!r}")
    return payload


def upcast_case_opened_v2_v3(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 schedules were rows of named fields: ``decode_schedule`` reads them as they are (the text stays as stored)."""
    return payload


def upcast_payment_received_v2_v3(payload: dict[str, Any]) -> dict[str, Any]:
    """v2 payments were all applied on the day they were recorded."""
    return {**payload, "value_date": None, "paid_on": None, "backdate_reason": None}


UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("PaymentReceived", 1): upcast_payment_received_v1_v2,
    ("LawsuitFiled", 1): upcast_lawsuit_filed_v1_v2,
    ("CaseOpened", 1): upcast_case_opened_v1_v2,
    ("ContactRecorded", 1): upcast_contact_v1_v2,
    ("ContactRefused", 1): upcast_contact_v1_v2,
    ("PlacedWithAgency", 1): upcast_placed_with_agency_v1_v2,
    ("PaymentReceived", 2): upcast_payment_received_v2_v3,
    ("ChargesAccrued", 1): upcast_charges_accrued_v1_v2,
    ("ChargesAccrued", 2): upcast_charges_accrued_v2_v3,
    ("ChargesAccrued", 3): upcast_charges_accrued_v3_v4,
    ("CaseOpened", 2): upcast_case_opened_v2_v3,
}
