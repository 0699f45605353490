"""Operator actions as Prefect flows: the UI shows a form for each, built from its command.

Each form is derived from the command's dataclass (``states.commands``): the
same fields, help texts as descriptions, vocabularies as choices, amounts as
decimal strings. Submitting it builds the command, so the form refuses
exactly what the CLI refuses, with the same message, before the run starts.
The flow then calls the same handler as the CLI; every event it writes
carries the operator's id as actor.
"""

from __future__ import annotations

import dataclasses
import typing
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model, model_validator

from flows import runtime
from flows.handlers.cases import handle
from flows.worklists import artifact_key
from states import commands
from states.commands import CaseCommand
from states.events import Event
from states.explain import describe
from states.views import AMOUNT_FIELDS

DecimalText = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, (Decimal, int)) and not isinstance(v, bool) else v)]


class CommandForm(BaseModel):
    """A Prefect form for one command; valid exactly when the command can be built from it."""

    model_config = ConfigDict(extra="forbid", use_enum_values=False)
    command: typing.ClassVar[type[CaseCommand]]

    @model_validator(mode="after")
    def _builds_the_command(self) -> CommandForm:
        self.to_command()  # raises InputError (a ValueError): pydantic names the field and the message
        return self

    def to_command(self) -> CaseCommand:
        return self.command(**{name: getattr(self, name) for name in type(self).model_fields})


def form_for(command: type[CaseCommand], name: str) -> type[CommandForm]:
    """The pydantic model of ``command``'s fields, for a flow parameter (so the UI draws a form)."""
    hints = typing.get_type_hints(command)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(command):
        hint = hints[f.name]
        optional = type(None) in typing.get_args(hint)
        if optional:
            (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
        kind: Any = DecimalText if hint is Decimal else hint
        if isinstance(hint, type) and issubclass(hint, Enum):
            kind = hint
        elif hint not in (Decimal, date, datetime, int, bool):
            kind = str
        default = ... if f.default is dataclasses.MISSING else f.default
        fields[f.name] = (kind | None if optional else kind, Field(default, description=f.metadata["help"]))
    form = create_model(name, __base__=CommandForm, __doc__=command.__doc__, **fields)
    form.command = command
    return form


Payment = form_for(commands.RecordPayment, "Payment")
ContactAttempt = form_for(commands.RecordContact, "ContactAttempt")
PromiseToPay = form_for(commands.MakePromise, "PromiseToPay")
Pause = form_for(commands.PauseCase, "Pause")
Resume = form_for(commands.ResumeCase, "Resume")
WriteOff = form_for(commands.WriteOff, "WriteOff")
VisitReport = form_for(commands.ReportVisit, "VisitReport")
LawsuitFiling = form_for(commands.FileLawsuit, "LawsuitFiling")
Judgment = form_for(commands.EnterJudgment, "Judgment")
Execution = form_for(commands.RecordExecution, "Execution")
AgencyRecall = form_for(commands.RecallFromAgency, "AgencyRecall")


def event_line(e: Event) -> str:
    """An event as the run's log and result show it: where in the history, and the one description."""
    return f"{e.case_id} #{e.seq} {e.business_date} {e.type}: {describe(e)}"


def _run(form: CommandForm) -> list[str]:
    """Run the command; log each event, and leave an artifact: what was recorded, and the case after it."""
    cmd = form.to_command()
    app = runtime.app()
    events: list[Event] = handle(cmd, app)
    lines = [event_line(e) for e in events]
    logger = get_run_logger()
    for line in lines or ["nothing recorded (already recorded)"]:
        logger.info(line)
    case_id = events[-1].case_id if events else app.store.resolve_case_id(cmd.case)
    view = app.store.case_row(case_id).projection
    rows = [{"what": e.type, "detail": describe(e)} for e in events] or [{"what": "nothing recorded", "detail": "already recorded"}]
    rows += [{"what": f"after: {name.replace('_', ' ')}", "detail": str(getattr(view, name))} for name in ("stage", *AMOUNT_FIELDS)]
    create_table_artifact(
        key=artifact_key(cmd.action, case_id),
        table=rows,
        description=f"{cmd.action} on case {case_id} by {cmd.operator}: what was recorded, and the case's balances after it",
    )
    return lines


def _run_name(kind: str, *fields: str):
    """A flow-run name from the form's values, e.g. pay-CF0000018-BANK-1 (the UI lists runs by it)."""

    def name() -> str:
        from prefect.runtime import flow_run

        form = next(iter(flow_run.parameters.values()), None)
        get = form.get if isinstance(form, dict) else (lambda f: getattr(form, f, None))
        values = [v.value if isinstance(v, Enum) else v for v in (get(f) for f in fields)]
        return "-".join([kind, *(str(v) for v in values if v)])

    return name


@flow(name="record-payment", flow_run_name=_run_name("pay", "case", "payment_id"))
def record_payment(payment: Payment) -> list[str]:
    """Record money received on a case; it is allocated line by line (costs, interest, principal)."""
    return _run(payment)


@flow(name="record-contact", flow_run_name=_run_name("contact", "case", "channel"))
def record_contact(contact: ContactAttempt) -> list[str]:
    """Record a contact attempt; one the conduct rules forbid is refused and the refusal recorded."""
    return _run(contact)


@flow(name="record-promise", flow_run_name=_run_name("promise", "case", "promised_on"))
def record_promise(promise: PromiseToPay) -> list[str]:
    """Record a promise to pay; it holds escalation until its date."""
    return _run(promise)


@flow(name="pause-case", flow_run_name=_run_name("pause", "case", "until"))
def pause_case(pause: Pause) -> list[str]:
    """Pause escalation (not accrual) until a date."""
    return _run(pause)


@flow(name="resume-case", flow_run_name=_run_name("resume", "case"))
def resume_case(resume: Resume) -> list[str]:
    """Lift a pause before it ends."""
    return _run(resume)


@flow(name="write-off-case", flow_run_name=_run_name("write-off", "case"))
def write_off_case(write_off: WriteOff) -> list[str]:
    """End recovery: write the case off (from outsourced; from litigation once execution ended without recovery)."""
    return _run(write_off)


@flow(name="report-visit", flow_run_name=_run_name("visit", "case", "outcome"))
def report_visit(visit: VisitReport) -> list[str]:
    """Report a field visit (two collectors at least); a failed one schedules the next."""
    return _run(visit)


@flow(name="file-lawsuit", flow_run_name=_run_name("lawsuit", "case"))
def file_lawsuit(lawsuit: LawsuitFiling) -> list[str]:
    """File a lawsuit outside the automatic rule; refused when suing is not worth it, unless overridden (recorded)."""
    return _run(lawsuit)


@flow(name="enter-judgment", flow_run_name=_run_name("judgment", "case", "deadline"))
def enter_judgment(judgment: Judgment) -> list[str]:
    """Record the judgment; the unpaid judgment debt bears delayed-performance interest from the day after the deadline."""
    return _run(judgment)


@flow(name="record-execution", flow_run_name=_run_name("execution", "case", "outcome"))
def record_execution(execution: Execution) -> list[str]:
    """Record how execution ended (the execution fee is a cost); no_assets allows the write-off."""
    return _run(execution)


@flow(name="recall-agency", flow_run_name=_run_name("recall", "case"))
def recall_agency(recall: AgencyRecall) -> list[str]:
    """Recall a case from its agency; it goes to another agency (or is tried again when none has room)."""
    return _run(recall)
