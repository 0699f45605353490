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
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from pydantic import BaseModel, Field

from flows import runtime
from flows.daily import _transient_only
from flows.handlers import loans
from models.crypto import load_keyring

ARTIFACT_REJECTIONS = 50


class LoanImport(BaseModel):
    file: str = Field(min_length=1, description="The loan file as the worker sees it: .csv or .jsonl (JSON Lines), optionally .gz")
    operator: str = Field(min_length=1, description="Your operator id: the actor of the opening and amendment events")
    amend: bool = Field(False, description="Record changed contact details of booked contracts (financial terms are never amended)")
    rejects: str | None = Field(None, description="Where rejected rows go (default: beside the file, NAME.rejects.csv)")
    business_date: date | None = Field(None, description="The import's business date (default: today, Asia/Shanghai)")
    encoding: str = Field("utf-8", description="The file's text encoding (gbk for a file saved by a Chinese Excel)")


@task(
    name="import-loan-file",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=_transient_only,
    task_run_name="import {request.file}",
)
def import_loan_file(request: LoanImport, business_date: date) -> dict:
    progress = create_progress_artifact(progress=0.0, description=f"Import of {request.file} for {business_date}")
    shown = [0.0]

    def on_progress(rows: int, done: int, total: int) -> None:
        percent = 100.0 * done / total if total else 100.0
        if percent - shown[0] >= 2.0 or done >= total:  # a few dozen updates, not one per chunk
            shown[0] = percent
            update_progress_artifact(artifact_id=progress, progress=percent)

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
    )
    return report.as_dict()


@flow(name="import-loans")
def import_loans(request: LoanImport) -> dict:
    """Import a loan file: good rows booked, bad rows to the rejects file, each problem named."""
    logger = get_run_logger()
    business_date = request.business_date or runtime.today()
    result = import_loan_file(request, business_date)
    figures = ("rows", "booked", "unchanged", "amended", "rejected", "events", "rows_per_second", "rejects_file")
    create_table_artifact(
        key="loan-import-summary",
        table=[{"figure": name.replace("_", " "), "value": str(result[name])} for name in figures],
        description=f"Import of {request.file} for business date {business_date}",
    )
    if result["rejected"]:
        create_table_artifact(
            key="loan-import-rejections",
            table=[{"rejection": message} for message in result["rejections"][:ARTIFACT_REJECTIONS]],
            description=f"{result['rejected']} row(s) rejected (values masked); all of them are in {result['rejects_file']}",
        )
        logger.warning("%d row(s) rejected; fix them in %s and import that file again", result["rejected"], result["rejects_file"])
    logger.info(
        "imported %s: %d rows, %d booked, %d unchanged, %d amended, %d rejected (%.0f rows/s)",
        request.file, result["rows"], result["booked"], result["unchanged"], result["amended"], result["rejected"],
        result["rows_per_second"],
    )
    return result
