"""canonical_json is encoded by orjson: byte for byte what json.dumps(sort_keys, compact) gives,
so every hash already in a chain still verifies (issue 13)."""

from __future__ import annotations

import enum
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from states.events import canonical_json, parse_json
from tests.unit.test_events import every_kind_of_event


def json_module(value) -> str:
    """The canonical JSON as it was written before orjson: the chain's hashes cover this text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


plain_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(plain_json)
def test_canonical_json_equals_the_json_module_on_any_plain_value(value):
    assert canonical_json(value) == json_module(value)
    assert parse_json(canonical_json(value)) == value


def test_every_event_and_the_snapshot_of_a_rich_history_encode_as_before():
    case = every_kind_of_event()
    for event in case.log:
        assert event.payload_json() == json_module(event.payload())
        assert event.canonical_json() == json_module(json.loads(event.canonical_json()))
    assert canonical_json(case.snapshot()) == json_module(case.snapshot())


def test_what_orjson_declines_is_encoded_by_the_json_module_all_the_same():
    class Channel(str, enum.Enum):
        CALL = "call"

    for value in ({Channel.CALL: 1}, 2**70, {"big": -(2**64)}):
        assert canonical_json(value) == json_module(value)


def test_a_stored_payload_is_hashed_in_the_canonical_form_json_gives_it():
    from datetime import date

    from models.recorder import stored_canonical_json

    def envelope(payload: str) -> str:
        return stored_canonical_json(case_id="c-1", seq=1, type="CaseReviewed", business_date=date(2026, 2, 6),
                                     actor="system", schema_version=1, payload=payload)

    canonical = '{"dpd":1,"next_review_on":"2026-02-09"}'
    assert envelope(canonical) == envelope('{ "next_review_on": "2026-02-09",  "dpd": 1 }')
    assert f'"payload":{canonical}' in envelope(canonical)
    long_int = '{"n":123456789012345678901234567890}'  # orjson alone would read it as a float
    assert f'"payload":{long_int}' in envelope(long_int)


def test_an_event_read_back_is_the_event_built_by_its_init_in_every_way():
    """The decoders build each dataclass by setting its ``__dict__`` once (``json_codec.builder``):
    equal, hashed, shown, replaced and pickled as the one ``__init__`` builds."""
    import copy
    import dataclasses
    import pickle

    from states.events import event_from_record

    for event in every_kind_of_event().log:
        again = event_from_record(**json.loads(event.canonical_json()))
        assert again == event and hash(again) == hash(event) and repr(again) == repr(event)
        assert type(again) is type(event) and again.canonical_json() == event.canonical_json()
        assert pickle.loads(pickle.dumps(again)) == event and copy.deepcopy(again) == event
        assert dataclasses.replace(again) == event and dataclasses.asdict(again) == dataclasses.asdict(event)


def test_the_builder_falls_back_to_init_for_defaults_checks_and_slots():
    import dataclasses

    import pytest

    from states.json_codec import builder

    @dataclasses.dataclass(frozen=True)
    class Plain:
        a: int
        b: int = 2

    @dataclasses.dataclass(frozen=True)
    class Checked:
        a: int

        def __post_init__(self):
            if self.a < 0:
                raise ValueError("negative")

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        a: int

    assert builder(Plain)({"a": 1, "b": 3}) == Plain(1, 3)
    assert builder(Plain)({"a": 1}) == Plain(1, 2)  # a missing field takes its default
    with pytest.raises(TypeError):
        builder(Plain)({"a": 1, "c": 3})  # a field it does not have
    with pytest.raises(ValueError, match="negative"):
        builder(Checked)({"a": -1})
    assert builder(Slotted)({"a": 1}) == Slotted(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        builder(Plain)({"a": 1, "b": 3}).a = 5  # still frozen
