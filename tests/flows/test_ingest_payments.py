"""The ingest-payments flow under prefect_test_harness: a payment file recorded on a worker,
its summary saved as a table artifact, rejections masked, and the same file again a no-op."""

from __future__ import annotations

import csv
import json
from datetime import date

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.handlers.cases import advance_batch
from flows import runtime
from flows.ingest_payments import PaymentIngest, ingest_payments
from states.events import PaymentReceived
from tests.integration.builders import book

PAYER = "欧阳娜娜"


def artifacts(key: str) -> list:
    """The artifacts under ``key``, the latest first, each as its rows."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort="CREATED_DESC")
    return [a.data if isinstance(a.data, list) else json.loads(a.data) for a in found]


def test_the_flow_records_a_payment_file_and_saves_its_summary(store, tmp_path):
    ids = book(store, 3)
    advance_batch(runtime.app(), ids, date(2024, 3, 1))
    path = tmp_path / "payments.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["payment_id", "contract_no", "amount", "paid_on", "channel", "payer_name"])
        writer.writerow(["TX-1", "MF-000001", "3000.00", "2024-03-05", "alipay", PAYER])
        writer.writerow(["TX-2", "MF-000002", "100.00", "2024-03-06", "wechat_pay", PAYER])
        writer.writerow(["TX-3", "MF-000003", "-5", "2024-03-06", "cash", PAYER + "\x02"])
    request = PaymentIngest(file=str(path), operator="op-pay", business_date=date(2024, 3, 31))

    result = ingest_payments(request)

    assert (result["applied"], result["rejected"], result["cases_cured"], result["amount_applied"]) == (2, 1, 1, "3100.00")
    assert [e.actor for e in store.events("CASE-000001") if isinstance(e, PaymentReceived)] == ["op-pay"]
    figures = {row["figure"]: row["value"] for row in artifacts("payment-import-summary")[0]}
    assert (figures["applied"], figures["rejected"], figures["cases cured"], figures["amount applied"]) == ("2", "1", "1", "3100.00")
    shown = json.dumps(artifacts("payment-import-rejections")[0], ensure_ascii=False)
    assert "row 4, column amount: '-5'" in shown and "column payer_name: '欧****'" in shown
    assert PAYER not in shown

    digest = store.digest()
    again = ingest_payments(request)
    assert (again["applied"], again["unchanged"], again["rejected"]) == (0, 2, 1)
    assert store.digest() == digest
