"""The app converts items to DynamoDB's AttributeValue JSON itself (importing boto3 for its serializer cost the
first request more than the rest of the app: docs/benchmarks.md). Items written before, with boto3's
TypeSerializer, must read back the same, and new items must be what boto3 would have written."""
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.core import db

scalars = st.none() | st.booleans() | st.integers(min_value=-(10 ** 37), max_value=10 ** 37) | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=4), max_leaves=20)
items = st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=6)


def _boto_plain(v):
    if isinstance(v, Decimal):
        return int(v)
    if isinstance(v, dict):
        return {k: _boto_plain(x) for k, x in v.items()}
    if isinstance(v, (list, set)):
        return [_boto_plain(x) for x in v]
    return v


@settings(max_examples=300, deadline=None)
@given(items)
def test_items_are_written_as_boto3_writes_them_and_read_back_unchanged(item):
    ser, de = TypeSerializer(), TypeDeserializer()
    ours = db.to_item(item)
    assert ours == {k: ser.serialize(v) for k, v in item.items() if v is not None}
    # what boto3 wrote reads back as the plain values the app stored
    theirs = {k: ser.serialize(v) for k, v in item.items() if v is not None}
    assert db.from_item(theirs) == {k: _boto_plain(de.deserialize(v)) for k, v in theirs.items()}
    assert db.from_item(ours) == {k: v for k, v in item.items() if v is not None}


def test_sets_numbers_and_refusals_follow_boto3():
    ser = TypeSerializer()
    assert db.to_item({"s": {"b", "a"}})["s"]["SS"] == sorted(ser.serialize({"b", "a"})["SS"])
    assert sorted(db.to_item({"n": {3, 1}})["n"]["NS"]) == sorted(ser.serialize({Decimal(3), Decimal(1)})["NS"])
    assert db.from_item({"n": {"NS": ["1", "3"]}, "d": {"N": "12.0"}}) == {"n": [1, 3], "d": 12}
    assert db.values(now=1, on=True) == {":now": {"N": "1"}, ":on": {"BOOL": True}}
    for bad in (1.5, float("nan"), set(), 10 ** 40, object()):
        with pytest.raises(TypeError):
            db.to_item({"x": bad})
        if bad != set():  # boto3 writes an empty set as {"NS": []}, which DynamoDB then refuses; we refuse it first
            with pytest.raises(Exception):  # boto3 refuses the others too (TypeError, or decimal's Rounded)
                ser.serialize(bad)
