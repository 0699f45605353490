"""Days past due, buckets and the five-category class at every boundary of DOMAIN.md section 1."""

from datetime import date

import pytest

from states.delinquency import (
    Bucket,
    Classification,
    bucket_for,
    classification_for,
    days_past_due,
    is_non_performing,
)

BOUNDARIES = [
    # dpd, bucket, class, non-performing
    (0, Bucket.M0, Classification.NORMAL, False),
    (1, Bucket.M1, Classification.SPECIAL_MENTION, False),
    (30, Bucket.M1, Classification.SPECIAL_MENTION, False),
    (31, Bucket.M2, Classification.SPECIAL_MENTION, False),
    (60, Bucket.M2, Classification.SPECIAL_MENTION, False),
    (61, Bucket.M3, Classification.SPECIAL_MENTION, False),
    (90, Bucket.M3, Classification.SPECIAL_MENTION, False),
    (91, Bucket.M4, Classification.SUBSTANDARD, True),
    (120, Bucket.M4, Classification.SUBSTANDARD, True),
    (121, Bucket.M5, Classification.SUBSTANDARD, True),
    (150, Bucket.M5, Classification.SUBSTANDARD, True),
    (151, Bucket.M6, Classification.SUBSTANDARD, True),
    (180, Bucket.M6, Classification.SUBSTANDARD, True),
    (181, Bucket.M7_PLUS, Classification.SUBSTANDARD, True),
    (270, Bucket.M7_PLUS, Classification.SUBSTANDARD, True),
    (271, Bucket.M7_PLUS, Classification.DOUBTFUL, True),
    (360, Bucket.M7_PLUS, Classification.DOUBTFUL, True),
    (361, Bucket.M7_PLUS, Classification.LOSS, True),
]


@pytest.mark.parametrize(("dpd", "bucket", "classification", "non_performing"), BOUNDARIES)
def test_bucket_class_and_non_performing_follow_the_policy_table(dpd, bucket, classification, non_performing):
    assert bucket_for(dpd) is bucket
    assert classification_for(dpd) is classification
    assert is_non_performing(dpd) is non_performing


def test_bucket_values_are_the_names_used_in_reports():
    assert [b.value for b in Bucket] == ["M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7+"]


def test_days_past_due_is_zero_when_nothing_is_unpaid():
    assert days_past_due(None, date(2024, 5, 1)) == 0


def test_days_past_due_is_zero_on_and_before_the_due_date():
    assert days_past_due(date(2024, 5, 1), date(2024, 5, 1)) == 0
    assert days_past_due(date(2024, 5, 1), date(2024, 4, 20)) == 0


def test_days_past_due_counts_calendar_days_after_the_due_date():
    assert days_past_due(date(2024, 5, 1), date(2024, 5, 2)) == 1
    assert days_past_due(date(2024, 2, 1), date(2024, 3, 1)) == 29  # leap February
    assert days_past_due(date(2023, 12, 31), date(2024, 12, 31)) == 366


@pytest.mark.parametrize("lookup", [bucket_for, classification_for, is_non_performing])
def test_negative_dpd_is_refused_with_the_value_named(lookup):
    with pytest.raises(ValueError, match=r"dpd .* got -1"):
        lookup(-1)
