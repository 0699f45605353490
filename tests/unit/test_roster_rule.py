"""The roster's own rule (``states.operators.roster_change``), without a store: who may change the
roster, and that no sequence of accepted changes leaves a roster in use without an active supervisor."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from states.errors import UserError
from states.operators import AddOperator, ChangeKind, DeactivateOperator, NotAllowed, Operator, RosterRefused, roster_change
from states.vocabulary import OperatorRole

SUP, COL, AUD = OperatorRole.SUPERVISOR, OperatorRole.COLLECTOR, OperatorRole.AUDITOR


def apply(roster: list[Operator], cmd) -> list[Operator]:
    change = roster_change(cmd, roster)
    return sorted([o for o in roster if o.operator_id != change.operator_id] + [change.entry()], key=lambda o: o.operator_id)


def test_a_collector_cannot_make_itself_a_supervisor():
    roster = [Operator("sup-1", SUP), Operator("op-li", COL)]
    with pytest.raises(NotAllowed, match="'op-li' is a collector; add-operator needs a supervisor"):
        roster_change(AddOperator("op-li", SUP, operator="op-li"), roster)


def test_the_first_operator_needs_no_acting_operator_and_is_a_supervisor():
    change = roster_change(AddOperator("sup-1", SUP), [])
    assert (change.change, change.role_before, change.role_after, change.actor) == (ChangeKind.ADDED, None, SUP, "system")
    with pytest.raises(RosterRefused, match="role: 'auditor' for the first operator"):
        roster_change(AddOperator("aud", AUD), [])


def test_a_deactivation_records_the_role_it_kept():
    roster = [Operator("sup-1", SUP), Operator("op-li", COL)]
    change = roster_change(DeactivateOperator("op-li", operator="sup-1"), roster)
    assert (change.change, change.role_before, change.role_after, change.active, change.actor) == (
        ChangeKind.DEACTIVATED, COL, COL, False, "sup-1",
    )


ids = st.sampled_from(["sup-1", "sup-2", "op-li", "aud"])
commands = st.one_of(
    st.builds(AddOperator, ids, st.sampled_from(list(OperatorRole)), st.one_of(st.none(), ids)),
    st.builds(DeactivateOperator, ids, st.one_of(st.none(), ids)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(commands, max_size=25))
def test_no_sequence_of_accepted_changes_leaves_a_roster_in_use_without_an_active_supervisor(cmds):
    roster: list[Operator] = []
    for cmd in cmds:
        try:
            roster = apply(roster, cmd)
        except UserError:
            continue
        assert any(o.active and o.role is SUP for o in roster), (cmd, roster)
