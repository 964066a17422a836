"""Real concurrency against DynamoDB Local: two administrators remove each other at the same moment."""
from chalicelib import bootstrap
from tests.conftest import jpost
from tests.unit.clinic_setup import ok
from tests.unit.test_clinic_membership import remove_each_other, two_admin_clinic


def test_two_admins_removing_each_other_leave_the_clinic_one(client, outbox, fixed_clock):
    svc = bootstrap.clinics()
    for round_ in range(3):
        one, two, cid = two_admin_clinic(client, outbox, fixed_clock, f"+791100008{round_}")
        assert remove_each_other(svc, cid, one, two, serialise_writes=False) == ["409 last_admin", "ok"]
        left = [u for u in (one, two)
                if jpost(client, f"/clinics/{cid}", token=u["token"], method="get").status_code == 200]
        assert len(left) == 1
        admins = ok(jpost(client, f"/clinics/{cid}/admins", token=left[0]["token"], method="get"))["items"]
        assert [a["user_id"] for a in admins] == [left[0]["user_id"]]
