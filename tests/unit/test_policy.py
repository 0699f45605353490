"""The collection policy: DOMAIN.md defaults, reading it from TOML, refusing bad settings."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest

from states.allocation import AllocationOrder
from states.policy import CollectionPolicy, PolicyError

D = Decimal
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "policy.example.toml"


def test_defaults_are_the_domain_rule_set():
    policy = CollectionPolicy()
    assert (
        policy.overdue_at_dpd,
        policy.phone_at_dpd,
        policy.visit_at_dpd,
        policy.outsource_at_dpd,
        policy.litigation_at_dpd,
        policy.write_off_at_dpd,
    ) == (1, 4, 31, 91, 181, 361)
    assert policy.litigation_min_claim == D("5000")
    assert policy.litigation_expected_recovery_rate == D("0.40")
    assert policy.promise_max_days == 14
    assert policy.broken_promises_to_skip_hold == 2
    assert policy.placement_days == 90
    assert policy.max_pause_days == 60
    assert policy.penalty_uplift == D("0.5")
    assert policy.allocation_order is AllocationOrder.CIVIL_CODE_561
    assert dict(policy.commission_rates) == {
        "M4-M6": D("0.15"),
        "M7+": D("0.25"),
        "written_off": D("0.35"),
    }
    assert policy.attorney_fee_recoverable is True
    assert policy.month_end_posting is True


def test_policy_is_immutable():
    policy = CollectionPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.phone_at_dpd = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.commission_rates["M7+"] = D("0.99")  # type: ignore[index]


def test_example_file_sets_every_field_to_its_default():
    text = EXAMPLE.read_text(encoding="utf-8")
    assert CollectionPolicy.from_toml(text) == CollectionPolicy()
    for field in dataclasses.fields(CollectionPolicy):
        assert f"\n{field.name} = " in text or f"[{field.name}]" in text


def test_toml_round_trip():
    policy = CollectionPolicy(
        phone_at_dpd=6,
        penalty_uplift=D("0.3"),
        litigation_min_claim=D("8000.50"),
        allocation_order=AllocationOrder.INSTALLMENT_BY_INSTALLMENT,
        commission_rates={"M4-M6": D("0.12"), "M7+": D("0.2"), "written_off": D("0.3")},
        month_end_posting=False,
    )
    assert CollectionPolicy.from_toml(policy.to_toml()) == policy
    assert CollectionPolicy.from_toml(CollectionPolicy().to_toml()) == CollectionPolicy()


def test_as_dict_is_plain_json_and_reads_back():
    policy = CollectionPolicy(penalty_uplift=D("0.75"))
    data = policy.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["penalty_uplift"] == "0.75"
    assert data["litigation_min_claim"] == "5000"
    assert data["commission_rates"] == {"M4-M6": "0.15", "M7+": "0.25", "written_off": "0.35"}
    assert data["allocation_order"] == "civil_code_561"
    assert CollectionPolicy.from_mapping(data) == policy


def test_toml_floats_become_the_decimals_written():
    policy = CollectionPolicy.from_toml("penalty_uplift = 0.1\nlitigation_expected_recovery_rate = 0.33\n")
    assert policy.penalty_uplift == D("0.1")
    assert policy.litigation_expected_recovery_rate == D("0.33")


def test_decimals_may_be_given_as_strings():
    policy = CollectionPolicy.from_toml('litigation_min_claim = "6000.00"\npenalty_uplift = "0.25"\n')
    assert policy.litigation_min_claim == D("6000.00")
    assert policy.penalty_uplift == D("0.25")


def test_absent_settings_keep_their_defaults_and_partial_commission_tables_merge():
    policy = CollectionPolicy.from_toml('visit_at_dpd = 45\n[commission_rates]\n"M7+" = 0.3\n')
    assert policy.visit_at_dpd == 45
    assert policy.phone_at_dpd == 4
    assert dict(policy.commission_rates) == {
        "M4-M6": D("0.15"),
        "M7+": D("0.3"),
        "written_off": D("0.35"),
    }


def test_fingerprint_is_stable_and_tracks_changes():
    default = CollectionPolicy()
    assert default.fingerprint() == CollectionPolicy().fingerprint()
    assert len(default.fingerprint()) == 64
    # The same numbers spelled differently are the same policy.
    assert CollectionPolicy(penalty_uplift=D("0.50")).fingerprint() == default.fingerprint()
    assert CollectionPolicy.from_toml("penalty_uplift = 0.5").fingerprint() == default.fingerprint()
    assert CollectionPolicy(penalty_uplift=D("0.6")).fingerprint() != default.fingerprint()
    assert CollectionPolicy(month_end_posting=False).fingerprint() != default.fingerprint()


def test_unknown_setting_is_refused_naming_it_and_the_known_ones():
    with pytest.raises(PolicyError, match=r"phone_at_day: unknown policy setting; known settings: overdue_at_dpd, .*month_end_posting"):
        CollectionPolicy.from_mapping({"phone_at_day": 4})


def test_invalid_toml_is_refused():
    with pytest.raises(PolicyError, match="not valid TOML"):
        CollectionPolicy.from_toml("phone_at_dpd = = 4")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"penalty_uplift": "abc"}, "penalty_uplift: 'abc' is not a decimal number"),
        ({"penalty_uplift": True}, "penalty_uplift: True is not a decimal number"),
        ({"penalty_uplift": "NaN"}, "penalty_uplift: 'NaN' is not a finite decimal number"),
        ({"penalty_uplift": "10.5"}, "penalty_uplift: must be between 0 and 10, got 10.5"),
        ({"penalty_uplift": -0.1}, "penalty_uplift: must be between 0 and 10, got -0.1"),
        (
            {"litigation_expected_recovery_rate": 1.2},
            "litigation_expected_recovery_rate: must be between 0 and 1, got 1.2",
        ),
        ({"litigation_min_claim": "-1"}, "litigation_min_claim: must be at least 0, got -1"),
        ({"visit_at_dpd": -3}, "visit_at_dpd: must be a non-negative integer, got -3"),
        ({"visit_at_dpd": 31.5}, "visit_at_dpd: must be a non-negative integer, got 31.5"),
        ({"visit_at_dpd": "31"}, "visit_at_dpd: must be a non-negative integer, got '31'"),
        ({"overdue_at_dpd": 0}, "overdue_at_dpd: must be a positive integer, got 0"),
        ({"promise_max_days": 0}, "promise_max_days: must be a positive integer, got 0"),
        ({"broken_promises_to_skip_hold": 0}, "broken_promises_to_skip_hold: must be a positive integer, got 0"),
        ({"placement_days": True}, "placement_days: must be a positive integer, got True"),
        ({"max_pause_days": -1}, "max_pause_days: must be a positive integer, got -1"),
        ({"month_end_posting": "yes"}, "month_end_posting: must be true or false, got 'yes'"),
        ({"attorney_fee_recoverable": 1}, "attorney_fee_recoverable: must be true or false, got 1"),
        (
            {"allocation_order": "newest_first"},
            "allocation_order: 'newest_first' is not one of: civil_code_561, installment_by_installment",
        ),
        ({"commission_rates": {"M7+": "0.3", "M1": "0.1"}}, "commission_rates: unknown bucket group 'M1'"),
        ({"commission_rates": {"M7+": 1.5}}, r"commission_rates.M7\+: must be between 0 and 1, got 1.5"),
        ({"commission_rates": 0.25}, "commission_rates: must be a table of bucket group -> rate, got 0.25"),
    ],
)
def test_each_bad_setting_is_refused_naming_field_value_and_what_is_accepted(settings, message):
    with pytest.raises(PolicyError, match=message):
        CollectionPolicy.from_mapping(settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"phone_at_dpd": 1}, r"phone_at_dpd: must be greater than overdue_at_dpd \(1\) .* got 1"),
        ({"visit_at_dpd": 3}, r"visit_at_dpd: must be greater than phone_at_dpd \(4\) .* got 3"),
        ({"outsource_at_dpd": 31}, r"outsource_at_dpd: must be greater than visit_at_dpd \(31\)"),
        ({"litigation_at_dpd": 90}, r"litigation_at_dpd: must be greater than outsource_at_dpd \(91\)"),
        ({"write_off_at_dpd": 180}, r"write_off_at_dpd: must be at least litigation_at_dpd \(181\) .* got 180"),
    ],
)
def test_thresholds_must_increase_in_stage_order(settings, message):
    with pytest.raises(PolicyError, match=message):
        CollectionPolicy.from_mapping(settings)


def test_write_off_may_coincide_with_litigation():
    policy = CollectionPolicy.from_mapping({"litigation_at_dpd": 361, "write_off_at_dpd": 361})
    assert policy.write_off_at_dpd == policy.litigation_at_dpd == 361


def test_direct_construction_is_validated_too():
    with pytest.raises(PolicyError, match="visit_at_dpd: must be a non-negative integer, got -3"):
        CollectionPolicy(visit_at_dpd=-3)
    with pytest.raises(PolicyError, match="commission_rates: no rate for written_off"):
        CollectionPolicy(commission_rates={"M4-M6": D("0.15"), "M7+": D("0.25")})
