"""The ``ingest-payments`` deployment: record a payment file on a worker, with a form in the Prefect UI.

    ingest_payments(request)
      ingest-payment-file task   flows.handlers.payments.import_payments: read, check, apply per
                                 case in paid_on order, ~2,000 rows a transaction (retried on a
                                 lost connection or a lock: the import is idempotent on
                                 payment_id, so a retry records nothing twice)
      artifacts                  progress while running; the summary table (applied, unchanged,
                                 rejected, amount applied, cases cured and settled) and the
                                 first rejections at the end

Personal data never reaches Prefect: the parameters are a path and an
operator id, the figures are counts and sums, and rejection messages show
the payer's name masked. The rejected rows themselves go to the rejects file
beside the input (mode 0600).
"""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger, task
from pydantic import BaseModel, Field

from flows import runtime
from flows.daily import _transient_only
from flows.handlers import payments
from flows.import_artifacts import progress_bar, publish_summary

SUMMARY = (
    "rows", "applied", "unchanged", "rejected", "amount_applied", "overpayment", "cases_cured", "cases_settled",
    "events", "rows_per_second", "rejects_file",
)


class PaymentIngest(BaseModel):
    file: str = Field(min_length=1, description="The payment file as the worker sees it: .csv or .jsonl (JSON Lines), optionally .gz")
    operator: str = Field(min_length=1, description="Your operator id: checked on the roster, the actor of every payment")
    rejects: str | None = Field(None, description="Where rejected rows go (default: beside the file, NAME.rejects.csv)")
    business_date: date | None = Field(None, description="The import's business date; no payment is dated after it (default: today, Asia/Shanghai)")
    encoding: str = Field("utf-8", description="The file's text encoding (gbk for a file saved by a Chinese Excel)")


@task(
    name="ingest-payment-file",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=_transient_only,
    task_run_name="ingest {request.file}",
)
def ingest_payment_file(request: PaymentIngest, business_date: date) -> dict:
    progress = progress_bar(f"Payments of {request.file} for {business_date}")

    def on_progress(stage: str, rows: int, done: int, total: int) -> None:
        # reading is the first half of the bar, applying the second
        progress((0.0 if stage == "reading" else 50.0) + 50.0 * (done / total if total else 1.0))

    report = payments.import_payments(
        runtime.app(),
        request.file,
        business_date=business_date,
        operator=request.operator,
        rejects=request.rejects,
        encoding=request.encoding,
        on_progress=on_progress,
    )
    return report.as_dict()


@flow(name="ingest-payments")
def ingest_payments(request: PaymentIngest) -> dict:
    """Record a payment file: good rows applied case by case, bad rows to the rejects file, each reason named."""
    logger = get_run_logger()
    business_date = request.business_date or runtime.today()
    result = ingest_payment_file(request, business_date)
    publish_summary("payment-import", result, SUMMARY, f"Payments of {request.file} for business date {business_date}")
    logger.info(
        "payments of %s: %d rows, %d applied (%s yuan), %d unchanged, %d rejected, %d cured, %d settled (%.0f rows/s)",
        request.file, result["rows"], result["applied"], result["amount_applied"], result["unchanged"], result["rejected"],
        result["cases_cured"], result["cases_settled"], result["rows_per_second"],
    )
    return result
