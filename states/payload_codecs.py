"""The compact forms events are stored in (issue 13): a ``CaseOpened`` schedule (v3) and the
whole ``ChargesAccrued`` payload (v3, v4). ``states.events`` declares the events and their generic
field-by-field codecs; what is written in a form of its own is here, with its reader. Every form
reads back exactly what was written, exponents included, and the older forms are read as stored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from typing import Any

from states.cap_ledger import Unenforced
from states.events import (
    AccrualSegment,
    CaseOpened,
    ChargePosting,
    ChargesAccrued,
    ScheduledInstallment,
    _field_payload_decoder,
)
from states.json_codec import builder, decode_decimal, decoder, encode_decimal
from states.rule_texts import POSTING_RULES, SEGMENT_RULES

_ONE_DAY = timedelta(days=1)


def encode_schedule(schedule: Sequence[ScheduledInstallment]) -> list[list[Any]]:
    """A schedule as rows [due_on, principal, interest] in integer fen (``CaseOpened`` v3).

    An installment numbered other than its place (1, 2, 3 ...) leads its row with its number;
    an amount other than whole fen with two places stays its decimal string (``_scaled``).
    """
    rows = []
    for place, i in enumerate(schedule, 1):
        row = [i.due_on.isoformat(), _scaled(i.principal, _FEN_EXP), _scaled(i.interest, _FEN_EXP)]
        if i.number != place or type(i.number) is not int:
            row.insert(0, _count(i.number))
        rows.append(row)
    return rows


def decode_schedule(rows: Any) -> tuple[ScheduledInstallment, ...]:
    """A stored schedule: v3 rows (``encode_schedule``), or v1/v2 rows of named fields."""
    schedule = []
    for place, row in enumerate(rows, 1):
        if type(row) is dict:
            schedule.append(_V2_INSTALLMENT(row))
            continue
        if type(row) is not list or len(row) not in (3, 4):
            raise TypeError(f"expected a schedule row, got {row!r}")
        number = _count(row[0]) if len(row) == 4 else place
        due_on, principal, interest = row[-3:]
        schedule.append(_INSTALLMENT({
            "number": number, "due_on": date.fromisoformat(due_on),
            "principal": _unscaled(principal, _FEN_EXP), "interest": _unscaled(interest, _FEN_EXP),
        }))
    return tuple(schedule)


# --------------------------------------------------------------------------
# ChargesAccrued v3 and v4: the compact payload (issue 13: ~70 % of the bytes of a store were these)
#
#   {"t": through, "n": days from accrued_from to through, "cr": cap_rate,
#    "cl": cap_limit, "cb": charged_before, "b": day-count basis,
#    "s": [[component, base, annual_rate, days, (exact,) rule(, start, end)], ...],
#    "p": [[component, installment, computed, enforceable, unenforceable, rule], ...],
#    "r": [[component, amount, installment], ...]}            ("r" only when something is released)
#
# Money with two places is an integer of fen, ``exact`` with twelve an integer of 1e-12; any other
# Decimal (another exponent, -0, beyond 63 bits) stays its decimal string, so every value reads back
# as written, exponent included (the explanation prints them). A segment's start and end are stored
# only when they are not (accrued_from + 1, through). A component is its code (``_COMPONENT_CODES``;
# an unknown one its name). A rule is its code in ``states.rule_texts`` (a string), or
# [code, argument] (the argument of a posting's rule is its installment unless stored), or
# ["", text] for a text no template gives.
#
# v4 leaves out what the rest of the event gives (20 % of a close's bytes): "t" when it is the
# event's business date, and a segment's ``exact`` when it is base x rate x days / basis to twelve
# places as ``_exact_of`` computes it ("b", the basis, only when it is not 365; ACT/360). Only a value
# that recomputes identically (digits, exponent and sign) is left out: every event still reads back
# as written, and the explanation still shows each unrounded amount.

_V2_INSTALLMENT = decoder(ScheduledInstallment)
_INSTALLMENT, _SEGMENT, _POSTING = builder(ScheduledInstallment), builder(AccrualSegment), builder(ChargePosting)

# Fields stored in a compact form of their own: name -> (encode, decode), by event class.
FIELD_CODECS: dict[type, dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]]] = {
    CaseOpened: {"schedule": (encode_schedule, decode_schedule)},
}

_COMPONENT_CODES = {
    "contract_interest": "c",
    "penalty_interest": "p",
    "compound_interest": "k",
    "late_fee": "f",
    "cap": "cap",
}
COMPONENT_NAMES = {code: name for name, code in _COMPONENT_CODES.items()}  # models.reporting reads codes too
_FEN_EXP = -2
_EXACT_EXP = -12


def component_code(name: str) -> str:
    code = _COMPONENT_CODES.get(name)
    if code is not None:
        return code
    if name in COMPONENT_NAMES:  # an unknown name spelt like a code would read back as another component
        raise ValueError(f"component {name!r} is spelt like a component code")
    return name


def component_name(code: Any) -> str:
    if not isinstance(code, str):
        raise TypeError(f"expected a component, got {code!r}")
    return COMPONENT_NAMES.get(code, code)


def _scaled(value: Decimal, exponent: int) -> int | str:
    """``value`` as an integer of 10**exponent if it has exactly that exponent, else its decimal string."""
    if type(value) is not Decimal and not isinstance(value, Decimal):
        raise TypeError(f"{value!r} in an event payload; use Decimal")
    text = str(value)  # "123.45" for any Decimal of exponent -2 (plain notation down to -6)
    whole, _dot, fraction = text.partition(".")
    # 18 characters at most: within 63 bits; "-0.00" stays text (as an integer it would read back 0.00)
    if len(fraction) == -exponent and fraction.isdigit() and len(whole) - exponent <= 18:
        scaled = int(whole + fraction)
        if scaled or whole[0] != "-":
            return scaled
    return text


def _unscaled(value: Any, exponent: int) -> Decimal:
    if type(value) is int:
        key = (value, exponent)
        found = _UNSCALED.get(key)
        if found is None:
            if len(_UNSCALED) >= 65536:  # a bound: a book repeats its amounts (a case its base, day after day)
                _UNSCALED.clear()
            found = _UNSCALED[key] = _DECIMAL(value).scaleb(exponent)
        return found
    if type(value) is str:
        return _DECIMAL(value)
    raise TypeError(f"money must be fen or a decimal string, got {value!r}")


_DECIMAL = Decimal
_UNSCALED: dict[tuple[int, int], Decimal] = {}  # stored fen -> its Decimal (immutable: shared by every event reading it)


def _count(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected int, got {value!r}")
    return value


def _installment(value: Any) -> int | None:
    return None if value is None else _count(value)


def _rate_text(value: Decimal) -> str:
    return encode_decimal(value)


def _rate(value: Any) -> Decimal:
    """A stored rate (decimal text), read once per distinct text: a book has a few dozen rates."""
    found = _RATES.get(value) if type(value) is str else None
    if found is None:
        found = decode_decimal(value)
        if len(_RATES) >= 4096:  # a bound, for a history of many rates
            _RATES.clear()
        _RATES[value] = found
    return found


_RATES: dict[str, Decimal] = {}  # immutable: shared by every event reading it


@functools.lru_cache(maxsize=4096)
def _rule_code(table_name: str, text: str, implied: str | None) -> str | tuple[str, str]:
    """A rule's stored form: its code, [code, argument], or ["", text] when no template gives the text."""
    table = _RULE_TABLES[table_name]
    for code, template in table.items():
        if "{}" not in template:
            if text == template:
                return code
            continue
        head, tail = template.split("{}")
        if len(text) > len(head) + len(tail) - 1 and text.startswith(head) and text.endswith(tail):
            argument = text[len(head): len(text) - len(tail)]
            if template.format(argument) == text:
                return code if argument == implied else (code, argument)
    return ("", text)


def _rule_text(table_name: str, stored: Any, implied: str | None) -> str:
    """The words of a stored rule (cached: a book has a few dozen distinct rules)."""
    if type(stored) is not str:
        if type(stored) is not list:
            raise TypeError(f"expected a rule code, got {stored!r}")
        stored = tuple(stored)
    key = (table_name, stored, implied)
    text = _RULE_TEXTS.get(key)
    if text is None:
        text = _RULE_TEXTS[key] = _fill_rule(*key)
    return text


_RULE_TEXTS: dict[tuple[str, Any, str | None], str] = {}


def _fill_rule(table_name: str, stored: str | tuple[Any, ...], implied: str | None) -> str:
    if len(_RULE_TEXTS) > 65536:  # a bound, for a history of rules without a template
        _RULE_TEXTS.clear()
    if isinstance(stored, str):
        template = _RULE_TABLES[table_name][stored]
        if "{}" in template:
            if implied is None:
                raise ValueError(f"rule {stored!r} needs its argument")
            return template.format(implied)
        return template
    if len(stored) != 2 or not all(isinstance(v, str) for v in stored):
        raise TypeError(f"expected a rule code, got {list(stored)!r}")
    code, argument = stored
    return argument if code == "" else _RULE_TABLES[table_name][code].format(argument)


_RULE_TABLES = {"segment": SEGMENT_RULES, "posting": POSTING_RULES}


def _recomputed(base: Any, rate: Any, days: int, basis: int) -> Decimal:
    """A left-out ``exact``, from the base and rate as stored (cached: a case accrues on the same base,
    day after day; the stored forms, fen or decimal text, spell each value with its exponent)."""
    key = (base, rate, days, basis)
    found = _EXACTS.get(key)
    if found is None:
        if type(base) is not int and type(base) is not str or type(rate) is not str:
            raise TypeError(f"segment base {base!r} at rate {rate!r}")
        if len(_EXACTS) >= 65536:
            _EXACTS.clear()
        found = _exact_of(_unscaled(base, _FEN_EXP), _rate(rate), days, basis)
        if found is None:
            raise ValueError(f"segment of base {base!r} at {rate!r} over {days} days has no exact amount")
        _EXACTS[key] = found
    return found


_EXACTS: dict[tuple[Any, str, int, int], Decimal] = {}  # stored (base, rate, days, basis) -> exact


_EXACT = Decimal(1).scaleb(_EXACT_EXP)
# the context ``exact`` is recomputed in, fixed here (not the thread's): writer and reader agree
_EXACT_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN, Emin=-999999, Emax=999999, traps=[InvalidOperation, DivisionByZero, Overflow])
_BASES = (365, 360)  # ``states.money.DayCount``: the first is the one a payload need not name


def _exact_of(base: Decimal, rate: Decimal, days: int, basis: int) -> Decimal | None:
    """base x rate x days / basis to twelve places, as ``states.accrual`` computes a segment's ``exact``
    (None where that cannot be done in 28 digits: such an ``exact`` is stored)."""
    context = _EXACT_CONTEXT
    try:
        return context.divide(context.multiply(context.multiply(rate, base), days), basis).quantize(_EXACT, context=context)
    except (InvalidOperation, DivisionByZero, Overflow):
        return None


def _recomputes(s: AccrualSegment, basis: int) -> bool:
    if type(s.days) is not int:
        return False
    computed = _exact_of(s.base, s.annual_rate, s.days, basis)
    return computed is not None and computed.compare_total(s.exact) == 0  # the same digits, exponent and sign


def encode_charges_accrued(event: ChargesAccrued) -> dict[str, Any]:
    """The v4 payload of a ``ChargesAccrued`` (the layout above)."""
    through = event.through
    first = event.accrued_from + _ONE_DAY
    basis, first_recomputes = _BASES[0], False  # the basis is the one the first segment recomputes by
    if event.segments:
        first_recomputes = _recomputes(event.segments[0], basis)
        if not first_recomputes and _recomputes(event.segments[0], _BASES[1]):
            basis, first_recomputes = _BASES[1], True
    omitted = False
    segments = []
    for place, s in enumerate(event.segments):
        row = [component_code(s.component), _scaled(s.base, _FEN_EXP), _rate_text(s.annual_rate), _count(s.days)]
        if first_recomputes if place == 0 else _recomputes(s, basis):
            omitted = True
        else:
            row.append(_scaled(s.exact, _EXACT_EXP))
        row.append(_rule_code("segment", s.rule, None))
        if s.start != first or s.end != through:
            row += [s.start.isoformat(), s.end.isoformat()]
        segments.append(row)
    postings = [
        [
            component_code(p.component), _installment(p.installment), _scaled(p.computed, _FEN_EXP),
            _scaled(p.enforceable, _FEN_EXP), _scaled(p.unenforceable, _FEN_EXP),
            _rule_code("posting", p.rule, str(p.installment)),
        ]
        for p in event.postings
    ]
    payload = {
        "n": (through - event.accrued_from).days,
        "cr": _rate_text(event.cap_rate),
        "cl": _scaled(event.cap_limit, _FEN_EXP),
        "cb": _scaled(event.charged_before, _FEN_EXP),
        "s": segments,
        "p": postings,
    }
    if through != event.business_date:
        payload["t"] = through.isoformat()
    if omitted and basis != _BASES[0]:
        payload["b"] = basis
    if event.released:
        payload["r"] = [
            [component_code(lot.component), _scaled(lot.amount, _FEN_EXP), _installment(lot.installment)]
            for lot in event.released
        ]
    return payload


def decode_charges_accrued(data: dict[str, Any], business_date: date) -> dict[str, Any]:
    """The fields of a ``ChargesAccrued`` from its v4 or v3 payload (``states.upcasting.upcast_charges_accrued_v3_v4`` has
    checked a v3 one has no v4 row), or from a v2 one (field names, rules as prose)."""
    if "segments" in data:
        return _field_payload_decoder(ChargesAccrued)(data)
    stored_through = data.get("t")
    through = business_date if stored_through is None else date.fromisoformat(stored_through)
    accrued_from = through - timedelta(days=_count(data["n"]))
    first = accrued_from + _ONE_DAY
    basis = data.get("b", _BASES[0])
    if basis not in _BASES or type(basis) is not int:
        raise ValueError(f"day-count basis {basis!r}")
    names, money, rule_text = COMPONENT_NAMES, _unscaled, _rule_text
    segments = []
    for row in data["s"]:
        size = len(row)
        if size in (6, 8):
            component, base, rate, days, exact, rule = row[:6]
            exact = money(exact, _EXACT_EXP)
        elif size in (5, 7):
            component, base, rate, days, rule = row[:5]
            exact = None
        else:
            raise ValueError(f"segment {row!r}")
        if size >= 7:
            start, end = date.fromisoformat(row[-2]), date.fromisoformat(row[-1])
        else:
            start, end = first, through
        days = _count(days)
        if exact is None:
            exact = _recomputed(base, rate, days, basis)
        segments.append(_SEGMENT({
            "component": names.get(component, component) if type(component) is str else component_name(component),
            "base": money(base, _FEN_EXP), "annual_rate": _rate(rate), "start": start, "end": end, "days": days,
            "exact": exact, "rule": rule_text("segment", rule, None),
        }))
    postings = []
    for component, installment, computed, enforceable, unenforceable, rule in data["p"]:
        if installment is not None and type(installment) is not int:
            raise TypeError(f"expected an installment, got {installment!r}")
        postings.append(_POSTING({
            "component": names.get(component, component) if type(component) is str else component_name(component),
            "computed": money(computed, _FEN_EXP), "enforceable": money(enforceable, _FEN_EXP),
            "unenforceable": money(unenforceable, _FEN_EXP), "rule": rule_text("posting", rule, str(installment)),
            "installment": installment,
        }))
    released = tuple(
        Unenforced(component_name(component), money(amount, _FEN_EXP), _installment(installment))
        for component, amount, installment in data.get("r", ())
    )
    return {
        "accrued_from": accrued_from,
        "through": through,
        "segments": tuple(segments),
        "postings": tuple(postings),
        "cap_rate": _rate(data["cr"]),
        "cap_limit": _unscaled(data["cl"], _FEN_EXP),
        "charged_before": _unscaled(data["cb"], _FEN_EXP),
        "released": released,
    }
