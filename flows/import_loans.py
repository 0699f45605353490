"""The ``import-loans`` deployment: load a loan file on a worker, with a form in the Prefect UI.

    import_loans(request)
      import-loan-file task   flows.handlers.loans.import_file: stream, check, book in chunks
                              (retried on a lost connection or a lock: the import is
                              idempotent on contract_no, so a retry books nothing twice)
      artifacts               progress while running; the figures and the first
                              rejections (masked) at the end

Personal data never reaches Prefect: the parameters are a path and flags,
the figures are counts, and rejection messages show values masked. The
rejected rows themselves go to the rejects file beside the input (mode 0600).
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger, task
from pydantic import BaseModel, Field

from flows import runtime
from flows.daily import _transient_only
from flows.handlers import loans
from flows.import_artifacts import progress_bar, publish_summary
from models.crypto import load_keyring


class LoanImport(BaseModel):
    file: str = Field(min_length=1, description="The loan file as the worker sees it: .csv or .jsonl (JSON Lines), optionally .gz")
    operator: str = Field(min_length=1, description="Your operator id: the actor of the opening and amendment events")
    amend: bool = Field(False, description="Record changed contact details of booked contracts (financial terms are never amended)")
    rejects: str | None = Field(None, description="Where rejected rows go (default: beside the file, NAME.rejects.csv)")
    business_date: date | None = Field(None, description="The import's business date (default: today, Asia/Shanghai)")
    encoding: str = Field("utf-8", description="The file's text encoding (gbk for a file saved by a Chinese Excel)")
    schedules: str | None = Field(
        None, description="The core system's repayment plans as the worker sees the file (contract_no, installment, due_on, "
        "principal, interest): used instead of computing them"
    )
    payments: str | None = Field(
        None, description="The loans' payment history as the worker sees the file (the payment file's format): booked on "
        "its dates as each new loan catches up to the business date"
    )


@task(
    name="import-loan-file",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=_transient_only,
    task_run_name="import {request.file}",
)
def import_loan_file(request: LoanImport, business_date: date) -> dict:
    progress = progress_bar(f"Import of {request.file} for {business_date}")

    def on_progress(rows: int, done: int, total: int) -> None:
        progress(100.0 * done / total if total else 100.0)

    report = loans.import_file(
        runtime.store(),
        request.file,
        business_date=business_date,
        policy=runtime.policy(),
        keyring=load_keyring(),
        amend=request.amend,
        rejects=request.rejects,
        actor=request.operator,
        encoding=request.encoding,
        on_progress=on_progress,
        today=runtime.today(),
        schedules=request.schedules,
        payments=request.payments,
    )
    return report.as_dict()


@flow(name="import-loans")
def import_loans(request: LoanImport) -> dict:
    """Import a loan file: good rows booked, bad rows to the rejects file, each problem named."""
    logger = get_run_logger()
    business_date = request.business_date or runtime.today()
    result = import_loan_file(request, business_date)
    figures = ("rows", "booked", "unchanged", "amended", "rejected", "events", "rows_per_second", "rejects_file")
    publish_summary("loan-import", result, figures, f"Import of {request.file} for business date {business_date}")
    logger.info(
        "imported %s: %d rows, %d booked, %d unchanged, %d amended, %d rejected (%.0f rows/s)",
        request.file, result["rows"], result["booked"], result["unchanged"], result["amended"], result["rejected"],
        result["rows_per_second"],
    )
    return result
