"""The cold start's first request, for real: a fresh interpreter imports ``app`` and answers the public
catalogue's ``GET /catalog/clinics`` through the Lambda entry point against DynamoDB Local, exactly as
bench/coldstart.py measures it. What keeps it cheap is held here (the bench measures how cheap): no pydantic,
no boto3, no plugin lookup, none of the feature models; and a bad query still gets a problem naming its fields."""
import json
import subprocess
import sys
from pathlib import Path

from bench import coldstart

ROOT = Path(__file__).resolve().parents[2]

PROBE = coldstart.APP + """
import sys
r = app(dict(event, queryStringParameters={"city": "K", "limit": "0", "sort": "x"},
             multiValueQueryStringParameters={"city": ["K"], "limit": ["0"], "sort": ["x"]}), None)
bad = json.loads(r["body"])
def ran(name):  # a module named through lazy_module is in sys.modules, but its body has not run until used
    return name in sys.modules and type(sys.modules[name]).__name__ != "_LazyModule"
# (importlib.metadata is not listed: urllib3 imports it, for the SDK alone too)
print(json.dumps({"loaded": sorted(m for m in sys.modules if ran(m) and (
    m.split(".")[0] in ("pydantic", "pydantic_core", "boto3", "stripe", "firebase_admin", "cryptography")
    or m.endswith(".models") or m.endswith("_models") and m != "chalicelib.clinics.catalog_models")),
                  "bad": [r["statusCode"], r["headers"]["Content-Type"], bad["errors"]]}))
"""


def test_the_first_catalogue_request_loads_no_pydantic_and_still_names_bad_fields(ddb_endpoint):
    import boto3

    from chalicelib.core.table import ensure_table

    ensure_table(boto3.client("dynamodb", endpoint_url=ddb_endpoint, region_name="eu-central-1",
                              aws_access_key_id="x", aws_secret_access_key="x"), coldstart.TABLE)
    env = coldstart.environment(ddb_endpoint)
    out = subprocess.run([sys.executable, "-c", PROBE % {"city": coldstart.CITY}], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["loaded"] == [], seen
    status, content_type, errors = seen["bad"]
    assert (status, content_type) == (422, "application/problem+json")
    assert [(e["field"], e["code"]) for e in errors] == [
        ("limit", "greater_than_equal"), ("city", "string_too_short"), ("sort", "unknown_field")]
