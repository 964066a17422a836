"""The unit tests' moto keeps DynamoDB's transaction rules after tests/moto_dynamodb.py made it fast: a
cancelled transaction leaves every item it named as it was, and two overlapping transactions from two
threads never both fail or both half-apply."""
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from chalicelib.core import aws


def _get(table, pk, sk):
    return aws.client("dynamodb").get_item(TableName=table, Key={"PK": {"S": pk}, "SK": {"S": sk}}).get("Item")


def _put(table, pk, sk, **attrs):
    item = {"PK": {"S": pk}, "SK": {"S": sk}, **{k: {"N": str(v)} for k, v in attrs.items()}}
    aws.client("dynamodb").put_item(TableName=table, Item=item)


def test_a_cancelled_transaction_leaves_every_item_as_it_was(backend_env):
    table = backend_env["TABLE_NAME"]
    for i in range(300):  # a table of some size around the items the transaction names
        _put(table, f"P#{i}", "A", n=i)
    _put(table, "KEEP", "A", n=1)
    _put(table, "GONE", "A", n=2)
    before = {k: _get(table, k, "A") for k in ("KEEP", "GONE", "P#7")}
    with pytest.raises(ClientError) as caught:
        aws.client("dynamodb").transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"PK": {"S": "NEW"}, "SK": {"S": "A"}, "n": {"N": "9"}}}},
            {"Update": {"TableName": table, "Key": {"PK": {"S": "KEEP"}, "SK": {"S": "A"}},
                        "UpdateExpression": "SET n = :v", "ExpressionAttributeValues": {":v": {"N": "100"}}}},
            {"Delete": {"TableName": table, "Key": {"PK": {"S": "GONE"}, "SK": {"S": "A"}}}},
            {"ConditionCheck": {"TableName": table, "Key": {"PK": {"S": "P#7"}, "SK": {"S": "A"}},
                                "ConditionExpression": "n = :x", "ExpressionAttributeValues": {":x": {"N": "8"}}}},
        ])
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _get(table, "NEW", "A") is None
    assert {k: _get(table, k, "A") for k in ("KEEP", "GONE", "P#7")} == before
    assert _get(table, "P#299", "A")["n"] == {"N": "299"}  # and the rest of the table is untouched


def test_two_overlapping_transactions_from_two_threads_exactly_one_applies(backend_env):
    table = backend_env["TABLE_NAME"]
    ddb = aws.client("dynamodb")

    def take(me, other):
        # each claims both items only if neither is claimed yet
        claim = {"UpdateExpression": "SET claimed_by = :me", "ConditionExpression": "attribute_not_exists(claimed_by)",
                 "ExpressionAttributeValues": {":me": {"S": me}}}
        try:
            ddb.transact_write_items(TransactItems=[
                {"Update": {"TableName": table, "Key": {"PK": {"S": f"R#{n}"}, "SK": {"S": "A"}}, **claim}}
                for n in (me, other)])
            return me
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "TransactionCanceledException", exc.response
            return None

    for round_ in range(30):
        _put(table, f"R#a{round_}", "A")
        _put(table, f"R#b{round_}", "A")
        with ThreadPoolExecutor(2) as pool:
            won = [w for w in pool.map(lambda ab: take(*ab), [(f"a{round_}", f"b{round_}"),
                                                                (f"b{round_}", f"a{round_}")]) if w]
        assert len(won) == 1, (round_, won)
        owners = {_get(table, f"R#{n}{round_}", "A")["claimed_by"]["S"] for n in ("a", "b")}
        assert owners == {won[0]}
