"""`make run`'s demo: the Berlin clinic can take a prepayment, and a Stripe event can be replayed."""
import json
import urllib.request


def test_the_berlin_demo_clinic_takes_prepayments_and_events_replay(client, fake_stripe):
    from chalicelib.clinics import store
    from local.seed import seed_once

    seeded = seed_once()
    clinic = store.get_clinic(seeded["berlin_clinic_id"])
    assert clinic["payouts"]["charges_enabled"] and clinic["payouts"]["account_id"] in fake_stripe.accounts
    services = [i for i in store.list_services(seeded["berlin_clinic_id"])] if hasattr(store, "list_services") \
        else [i for i in __import__("chalicelib.core.db", fromlist=["db"]).query_prefix(
            store.clinic_pk(seeded["berlin_clinic_id"]), "SERVICE#")]
    prepaid = [s for s in services if s.get("prepayment", {}).get("kind") == "percent"]
    assert len(prepaid) == 1 and prepaid[0]["price"]["currency"] == "EUR"
    # an event the local Stripe sent can be listed and sent again
    fake_stripe.payments.event("payment_intent.canceled", {"id": "pi_x", "metadata": {}})
    base = f"http://127.0.0.1:{fake_stripe.server.server_address[1]}"
    events = json.loads(urllib.request.urlopen(base + "/_local/events").read())
    assert events[-1]["type"] == "payment_intent.canceled"
    req = urllib.request.Request(base + f"/_local/replay/{events[-1]['id']}", data=b"", method="POST")
    assert json.loads(urllib.request.urlopen(req).read())["replayed"] == events[-1]["id"]
