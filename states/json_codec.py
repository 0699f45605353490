"""Canonical JSON, and the codecs between declared Python types and plain JSON values.

``canonical_json`` is the text the store hashes into the chain (keys sorted,
no spaces, never floats); ``parse_json`` reads it back. ``decoder`` and
``encoder`` compile, once per declared type (a dataclass, a tuple of one, an
optional, Decimal as a decimal string, date as ISO), the functions events and
their payload codecs (``states.events``, ``states.payload_codecs``) use by the
million.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any, Callable

import orjson


# orjson writes plain JSON values (str keys, 64-bit ints, str, bool, None, lists, dicts;
# never floats: payloads refuse them) byte for byte as json.dumps(sort_keys, no spaces,
# ensure_ascii=False) does, several times faster; the hash chain covers these bytes.
# What orjson declines (a str-enum dict key, a huge int, a lone surrogate) goes through
# json, so the text never depends on which encoder ran. Dataclasses and dates it would
# encode by itself are declined too: as before, they must be made plain values first.
_ORJSON_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME


def canonical_json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=_ORJSON_CANONICAL).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_json(text: str) -> Any:
    """JSON text to plain values (orjson, ~3x json; what it refuses, such as NaN, json reads).

    An integer beyond 64 bits comes back a float (json keeps it exact): this
    code writes none (counts, days, seqs), and what hashes a stored payload
    (``models.recorder.stored_canonical_json``) re-reads one with json.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def compose_canonical_json(
    *, case_id: str, seq: int, type: str, business_date: str, actor: str, schema_version: int, payload_json: str
) -> str:
    """``canonical_json(envelope)`` assembled around an already encoded payload.

    Byte for byte what encoding the whole envelope gives (keys sorted, no
    spaces), without encoding the payload a second time: the store hashes
    every event it writes and verify re-hashes every event it reads.
    """
    text = _string_json
    return (
        f'{{"actor":{text(actor)},"business_date":{text(business_date)},"case_id":{text(case_id)},'
        f'"payload":{payload_json},"schema_version":{int(schema_version)},"seq":{int(seq)},"type":{text(type)}}}'
    )


@functools.lru_cache(maxsize=1 << 16)
def _string_json(value: str) -> str:
    """``canonical_json`` of an envelope's text (a case id, a date, a type, an actor: each seen again
    and again, by every event of its case or day)."""
    return canonical_json(value)


def to_json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [to_json_value(v) for v in value]
    if isinstance(value, float):
        raise TypeError(f"float {value!r} in an event payload; use Decimal")
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    """The type hints of ``cls``, resolved once."""
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = typing.get_type_hints(cls)
    return found


# Codecs compiled once per declared type: events are encoded and decoded by
# the million (every save hashes them, every load and replay reads them).


@functools.lru_cache(maxsize=None)
def builder(cls: type) -> Callable[[dict[str, Any]], Any]:
    """Make a ``cls`` from a new dict of its fields' values, as a decoder does by the million.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; setting the
    instance's ``__dict__`` once is the same object (equal, hashed and shown alike) at half the cost.
    The dict becomes the instance's: the caller makes a new one each time. A dict that is not
    exactly the fields, and a class with a ``__post_init__``, slots or fields outside ``__init__``,
    go through ``cls(**values)`` (defaults, checks and its TypeError as ever).
    """
    fields = dataclasses.fields(cls)
    names = frozenset(f.name for f in fields)
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__") or not all(f.init for f in fields):
        return lambda values: cls(**values)
    new, set_dict = object.__new__, object.__setattr__

    def build(values: dict[str, Any]) -> Any:
        if values.keys() != names:
            return cls(**values)
        made = new(cls)
        set_dict(made, "__dict__", values)
        return made

    return build


@functools.lru_cache(maxsize=None)
def decoder(hint: Any) -> Callable[[Any], Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        decode_inner = decoder(inner)
        return lambda v: None if v is None else decode_inner(v)
    if origin is tuple:
        decode_item = decoder(typing.get_args(hint)[0])
        return lambda v: tuple(decode_item(x) for x in v)
    if hint is Decimal:
        return decode_decimal
    if hint is date:
        return date.fromisoformat
    if dataclasses.is_dataclass(hint):
        names = [f.name for f in dataclasses.fields(hint)]
        decoders = [decoder(hints(hint)[n]) for n in names]
        pairs = list(zip(names, decoders))
        build = builder(hint)
        return lambda v: build({n: d(v[n]) for n, d in pairs})
    if hint in (int, str, bool):
        def check(v: Any, _t: type = hint) -> Any:
            if not isinstance(v, _t):
                raise TypeError(f"expected {_t.__name__}, got {v!r}")
            return v

        return check
    return lambda v: v


def decode_decimal(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise TypeError(f"money must be a decimal string, got {value!r}")
    return Decimal(value)


@functools.lru_cache(maxsize=None)
def encoder(hint: Any) -> Callable[[Any], Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        encode_inner = encoder(inner)
        return lambda v: None if v is None else encode_inner(v)
    if origin is tuple:
        encode_item = encoder(typing.get_args(hint)[0])
        return lambda v: [encode_item(x) for x in v]
    if hint is Decimal:
        return encode_decimal
    if hint is date:
        return lambda v: v.isoformat()
    if dataclasses.is_dataclass(hint):
        pairs = [(f.name, encoder(hints(hint)[f.name])) for f in dataclasses.fields(hint)]
        return lambda v: {n: e(getattr(v, n)) for n, e in pairs}
    if hint in (str, int, bool):
        def plain(v: Any, _t: type = hint) -> Any:  # what to_json_value returns for it, without its checks
            return v if type(v) is _t else to_json_value(v)

        return plain
    return to_json_value


def encode_decimal(value: Any) -> str:
    if isinstance(value, float):
        raise TypeError(f"float {value!r} in an event payload; use Decimal")
    return str(value)
