"""The payments benchmark (``python -m bench.payments`` runs it with PAYMENTS_BENCH=1 and writes the numbers):
webhook events per second against the raw DynamoDB calls they make, and payment creation against those raw
calls plus the Stripe round trip, side by side in one run on DynamoDB Local and the local Stripe server."""
import os
import statistics
import time

from chalicelib import bootstrap
from chalicelib.core import aws
from tests.integration.test_payments_concurrency import holds
from tests.integration.test_payments_concurrency import w as w  # noqa: F401  (the fixture)

N = 40


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, model=None, params=None, **_):
        self.calls.append((model.name, dict(params)))


def replay(calls):
    """The same DynamoDB calls with plain boto3 on the same table (a transaction replayed is cancelled by its
    own conditions: the same items and the same round trip)."""
    import boto3

    raw = boto3.client("dynamodb", endpoint_url=os.environ["DYNAMODB_ENDPOINT"], region_name="eu-central-1")
    t = time.perf_counter()
    for name, params in calls:
        fn = getattr(raw, {"GetItem": "get_item", "BatchGetItem": "batch_get_item",
                           "TransactWriteItems": "transact_write_items", "Query": "query",
                           "PutItem": "put_item", "UpdateItem": "update_item"}[name])
        try:
            fn(**params)
        except raw.exceptions.TransactionCanceledException:
            pass
        except raw.exceptions.ConditionalCheckFailedException:
            pass
    return time.perf_counter() - t


def stripe_round_trips(fake, n):
    """The Stripe calls one payment creation makes (intent, ephemeral key), alone, against the same server."""
    gw = bootstrap.stripe()
    cus = gw.ensure_customer("bench", idempotency_key="bench-cus")
    t = time.perf_counter()
    for i in range(n):
        gw.create_intent(amount=3600, currency="EUR", customer=cus, destination="acct_x", fee=180, metadata={},
                         idempotency_key=f"bench-{i}-{time.time()}")
        gw.customer_key(cus)
    return (time.perf_counter() - t) / n


def test_benchmark(client, w, fake_stripe, drain):  # noqa: F811
    me, bids = holds(client, w, N)
    pay = bootstrap.payments()
    rec = Recorder()
    create, create_raw, sheets = [], [], []
    for bid in bids:
        rec.calls.clear()
        aws.add_hook("provide-client-params.dynamodb", rec)
        t = time.perf_counter()
        sheets.append(pay.create_intent(me, bid, 0))
        create.append(time.perf_counter() - t)
        aws.remove_hook("provide-client-params.dynamodb", rec)
        create_raw.append(replay(list(rec.calls)))
    stripe_s = stripe_round_trips(fake_stripe, 20)
    for s in sheets:
        fake_stripe.payments.confirm(s["client_secret"].split("_secret_")[0])
    events = [e for e in fake_stripe.payments.events if e["type"] == "payment_intent.succeeded"]
    svc = bootstrap.clinics()
    hook, hook_raw = [], []
    for e in events:
        rec.calls.clear()
        aws.add_hook("provide-client-params.dynamodb", rec)
        t = time.perf_counter()
        assert svc.handle_stripe_event(e)["handled"]
        hook.append(time.perf_counter() - t)
        aws.remove_hook("provide-client-params.dynamodb", rec)
        hook_raw.append(replay(list(rec.calls)))
    med = statistics.median
    out = {"n": N, "hook_ms": med(hook) * 1000, "hook_raw_ms": med(hook_raw) * 1000,
           "create_ms": med(create) * 1000, "create_raw_ms": med(create_raw) * 1000, "stripe_ms": stripe_s * 1000}
    path = os.environ.get("PAYMENTS_BENCH_OUT")
    if path:
        import json

        with open(path, "w") as f:
            json.dump(out, f)
