"""Log hygiene over the records journey: no card content, diagnosis, medication or phone in any log line."""
from __future__ import annotations

from datetime import timedelta

from tests.conftest import jpost
from tests.unit.clinic_setup import ok
from tests.unit.records_world import ALLERGY, SECRETS, backend_env, fill_card, grant, records_module, records_world  # noqa: F401  (one world per module)


def test_no_record_content_reaches_the_logs(client, outbox, fixed_clock, logs):
    w = records_world(client, outbox, fixed_clock)
    start = len(logs.text())
    t, pid = w["patient"]["token"], w["patient"]["user_id"]
    ids = fill_card(client, t)
    ok(jpost(client, f"/me/card/allergies/{ids['allergies'][0]}", {**ALLERGY, "reaction": "anaphylaxis"}, token=t,
             method="put"))
    jpost(client, "/me/card/vaccinations", {"vaccine": "Measles booster", "date": "2030-01-01"}, token=t)  # 422
    until = (fixed_clock.now() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    g = grant(client, t, until, doctor_id=w["doctor"]["user_id"], sections=["allergies", "conditions"])
    d = w["doctor"]["token"]
    ok(jpost(client, f"/patients/{pid}/card", token=d, method="get"))
    ok(jpost(client, f"/patients/{pid}/card/conditions", {"name": "Hypertension stage 2", "status": "active"},
             token=d), 201)
    jpost(client, f"/patients/{pid}/card/medications", {"name": "Lisinopril"}, token=d)  # 403 section_not_shared
    ok(jpost(client, "/me/card-access-log", token=t, method="get"))
    ok(jpost(client, f"/me/card-grants/{g['grant_id']}", token=t, method="delete"), 204)
    ok(jpost(client, f"/patients/{pid}/card", token=d, method="get"))  # their own entry only
    # a document and a visit conclusion
    from tests.unit.records_world import after_the_visit
    from tests.unit.test_records_conclusions import FULL
    from tests.unit.test_records_documents import PDF, upload_as_the_browser_would

    doc = ok(jpost(client, "/me/card/documents", PDF, token=t), 201)
    upload_as_the_browser_would(doc["upload"], b"%PDF-" + b"x" * 2043)
    ok(jpost(client, f"/me/card/documents/{doc['document_id']}/complete", {}, token=t))
    ok(jpost(client, f"/me/card/documents/{doc['document_id']}/download", token=t, method="get"))
    after_the_visit(client, w, fixed_clock)
    C = f"/bookings/{w['visit']['booking_id']}/conclusion"
    ok(jpost(client, C, FULL, token=w["doctor"]["token"], method="put"))
    ok(jpost(client, f"{C}/sign", {}, token=w["doctor"]["token"]))
    jpost(client, f"{C}/amendments", {**FULL, "icd10": "j45"}, token=w["doctor"]["token"])  # 422
    ok(jpost(client, "/me/card/export", token=w["patient"]["token"], method="get"))
    text = logs.text()[start:]
    assert "records.entry_added" in text and "records.card_read" in text  # the journey was logged...
    assert "records.conclusion_signed" in text and "records.download_issued" in text
    conclusion = [FULL[k] for k in ("complaints", "findings", "diagnosis", "recommendations")] + ["J45.0", "j45"]
    for secret in SECRETS + ["anaphylaxis", "Measles", "Hypertension", "Lisinopril", PDF["name"], "MRI of the knee",
                             "Ivanova"] + conclusion:  # ...and none of the card
        assert secret.lower() not in text.lower(), secret
    for person in ("patient", "doctor", "other"):
        assert w[person]["phone"] not in text and w[person]["phone"][1:] not in text
