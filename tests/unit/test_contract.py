"""The contract (openapi.yaml) and the app cannot drift apart.

Every route has an operation and every operation a route; protected routes and only those
declare the bearer scheme; every example is valid against the schema next to it; the shared
error responses are where the app can produce them; and the app serves the file itself and a
readable page. The running server is held to the same contract by tests/e2e/test_fuzz.py.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
SPEC_URI = "urn:clinic:openapi"


def missing(why: str) -> None:
    """A checker this test needs is absent: a failure in CI, a skip that says why elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required in CI: {why}")
    pytest.skip(f"unavailable outside CI: {why}")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def app_routes() -> dict[tuple[str, str], Any]:
    from app import app

    # OPTIONS is the CORS preflight of every path (core.web.add_preflight_routes), not an operation.
    return {(path, method.upper()): entry for path, methods in app.routes.items() for method, entry in methods.items()
            if method.upper() != "OPTIONS"}


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method.upper()): op for path, item in spec["paths"].items()
            for method, op in item.items() if method in HTTP_METHODS}


def resolve(spec: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are used: {ref}"
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def flatten(spec: dict[str, Any], node: Any) -> Any:
    """A schema with its $ref resolved and the keywords written next to the $ref kept."""
    if isinstance(node, dict) and "$ref" in node:
        return {**flatten(spec, resolve(spec, {"$ref": node["$ref"]})), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def pointer(*parts: str) -> str:
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def requires_bearer(spec: dict[str, Any], op: dict[str, Any]) -> bool:
    security = op.get("security", spec.get("security", []))
    # [] or a list holding {} means anonymous calls are allowed.
    return bool(security) and all(requirement for requirement in security)


# ------------------------------------------------------------------ routes and operations

def documented_routes(spec: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """Routes that have an operation (the others fail the test just below, once)."""
    ops = operations(spec)
    return {key: entry for key, entry in app_routes().items() if key in ops}


def test_every_route_has_an_operation_and_every_operation_a_route(spec):
    routes, ops = set(app_routes()), set(operations(spec))
    missing = "\n".join(f"  {method} {path}" for path, method in sorted(routes - ops))
    assert not missing, f"routes the app serves that openapi.yaml does not describe:\n{missing}"
    extra = "\n".join(f"  {method} {path}" for path, method in sorted(ops - routes))
    assert not extra, f"operations in openapi.yaml that the app does not serve:\n{extra}"


def test_path_parameters_match_the_route(spec):
    for key, entry in documented_routes(spec).items():
        op = operations(spec)[key]
        declared = {resolve(spec, p)["name"] for p in op.get("parameters", []) if resolve(spec, p)["in"] == "path"}
        assert declared == set(entry.view_args), f"{key}: path parameters {declared} != route's {entry.view_args}"
        for p in op.get("parameters", []):
            p = resolve(spec, p)
            if p["in"] == "path":
                assert p.get("required") is True, f"{key}: path parameter {p['name']} must be required"


def test_routes_with_an_authorizer_and_only_those_require_the_bearer_token(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        **spec["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for key, entry in documented_routes(spec).items():
        op = operations(spec)[key]
        protected = entry.authorizer is not None
        assert requires_bearer(spec, op) == protected, (
            f"{key}: the route {'has' if protected else 'has no'} authorizer but the spec "
            f"{'does not require' if protected else 'requires'} a bearer token")
        if protected:
            assert all(set(req) == {"bearerAuth"} for req in op["security"]), key


def test_operation_ids_are_unique_and_every_operation_is_tagged_and_summarised(spec):
    ids = [op["operationId"] for op in operations(spec).values()]
    assert len(ids) == len(set(ids))
    tags = {t["name"] for t in spec["tags"]}
    for key, op in operations(spec).items():
        assert op.get("summary") and op.get("tags") and set(op["tags"]) <= tags, key


# ------------------------------------------------------------------ responses the app can produce

def test_every_operation_documents_the_errors_the_edge_produces(spec):
    for key, op in operations(spec).items():
        responses = op["responses"]
        # The middleware answers 405 (with Allow) and 415 for any path.
        assert {"405", "415"} <= set(responses), key
        if "requestBody" in op:
            assert {"400", "413", "422"} <= set(responses), f"{key}: a JSON body can be malformed, too big or invalid"
            assert set(op["requestBody"]["content"]) == {"application/json"}, key
        if requires_bearer(spec, op):
            unauthorized = resolve(spec, responses["401"])
            assert set(unauthorized["content"]) == {"application/problem+json", "application/json"}, (
                f"{key}: 401 comes as a problem from the API and as {{message}} from the gateway")
        # API Gateway's throttling can answer 429 before any operation runs.
        assert "429" in responses, f"{key}: the gateway's throttling can answer 429"
        for status, response in responses.items():
            gateway_only = response == {"$ref": "#/components/responses/Throttled"}
            response = resolve(spec, response)
            if status.startswith(("4", "5")) and not gateway_only:
                assert "application/problem+json" in response["content"], f"{key} {status}"
            if status in ("429", "503") and not gateway_only:
                assert response["headers"]["Retry-After"]["$ref"] == "#/components/headers/Retry-After", key
            if status == "405":
                assert "Allow" in response["headers"], key
        assert any(s.startswith("2") for s in responses), f"{key} has no success response"
        assert not any(s.startswith("5") and s != "503" for s in responses), f"{key}: a 5xx is a bug, not a contract"


def test_operations_that_send_sms_document_their_limits_and_503(spec):
    sms = {("/auth/signup", "POST"), ("/auth/login", "POST"), ("/auth/password-reset", "POST"),
           ("/auth/challenges/{challenge_id}/resend", "POST"), ("/me/step-up", "POST"), ("/me/phone", "PUT"),
           ("/clinics/{clinic_id}/invitations", "POST")}
    for key, op in operations(spec).items():
        if key in sms:
            assert "503" in op["responses"], key
            # the app's own limits: a problem with Retry-After (beside the gateway's body)
            assert op["responses"]["429"] != {"$ref": "#/components/responses/Throttled"}, key


def test_every_operation_takes_language_and_correlation_headers(spec):
    for key, op in operations(spec).items():
        names = {resolve(spec, p)["name"] for p in op.get("parameters", [])}
        assert {"Accept-Language", "X-Correlation-Id"} <= names, key


def test_request_schemas_reject_unknown_fields(spec):
    def closed(schema: Any, where: str, seen: set[str]) -> None:
        if isinstance(schema, dict) and "$ref" in schema:
            if schema["$ref"] in seen:
                return
            seen = seen | {schema["$ref"]}
        schema = resolve(spec, schema)
        if not isinstance(schema, dict):
            return
        if schema.get("type") == "object" or "properties" in schema:
            assert schema.get("additionalProperties") is False, f"{where}: unknown fields must be rejected"
        for name, sub in schema.get("properties", {}).items():
            closed(sub, f"{where}.{name}", seen)
        for sub in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
            closed(sub, where, seen)

    for key, op in operations(spec).items():
        if "requestBody" in op:
            closed(op["requestBody"]["content"]["application/json"]["schema"], str(key), set())


def payment_bodies() -> dict:
    from chalicelib.payments import models as p

    return {("/bookings/{booking_id}/payment", "POST"): p.PaymentIn, ("/clinics/{clinic_id}/payments/links", "POST"):
            p.LinkIn, ("/clinics/{clinic_id}/payments/reception", "POST"): p.ReceptionIn,
            ("/clinics/{clinic_id}/payments/{payment_id}/refunds", "POST"): p.RefundIn,
            ("/clinics/{clinic_id}/payments/{payment_id}/refunds/{refund_id}/payout", "POST"): p.PayoutIn}


def payment_queries() -> dict:
    from chalicelib.payments import models as p

    return {("/me/payments", "GET"): p.HistoryQuery, ("/clinics/{clinic_id}/payments", "GET"): p.TransactionsQuery,
            ("/clinics/{clinic_id}/payments/daily", "GET"): p.TotalsQuery,
            ("/clinics/{clinic_id}/payments/export", "GET"): p.TotalsQuery}


def test_request_schemas_mirror_the_pydantic_models(spec):
    """Field names, required fields and the plain constraints of the models are those of the spec."""
    from annotated_types import MaxLen, MinLen
    from pydantic_core import PydanticUndefined

    from chalicelib.analytics import models as an
    from chalicelib.booking import models as b
    from chalicelib.clinics import models as c
    from chalicelib.identity import models as m
    from chalicelib.notify import models as n
    from chalicelib.records import models as r

    entry = tuple(r.ENTRY_MODELS.values())  # the path's section picks one; the spec says oneOf, in this order
    bodies = {
        ("/auth/signup", "POST"): m.SignUpRequest, ("/auth/signup/verify", "POST"): m.VerifySignUpRequest,
        ("/auth/login", "POST"): m.LoginRequest, ("/auth/login/verify", "POST"): m.VerifyLoginRequest,
        ("/auth/refresh", "POST"): m.RefreshRequest, ("/auth/password-reset", "POST"): m.PasswordResetRequest,
        ("/auth/password-reset/confirm", "POST"): m.PasswordResetConfirm, ("/me", "PATCH"): m.ProfilePatch,
        ("/me/step-up/verify", "POST"): m.StepUpVerify, ("/me/password", "PUT"): m.PasswordChange,
        ("/me/phone", "PUT"): m.PhoneChange, ("/me/phone/verify", "POST"): m.PhoneChangeVerify,
        ("/me/totp/confirm", "POST"): m.TotpConfirm,
        ("/auth/challenges/{challenge_id}/resend", "POST"): m.Strict, ("/me/step-up", "POST"): m.Strict,
        ("/me/totp", "POST"): m.Strict, ("/me/recovery-codes", "POST"): m.Strict,
        ("/clinics", "POST"): c.ClinicCreate, ("/clinics/{clinic_id}", "PATCH"): c.ClinicPatch,
        ("/clinics/{clinic_id}/reject", "POST"): c.Rejection,
        ("/clinics/{clinic_id}/invitations", "POST"): c.InvitationIn, ("/invitations/accept", "POST"): c.InvitationAccept,
        ("/clinics/{clinic_id}/branches", "POST"): c.BranchIn,
        ("/clinics/{clinic_id}/branches/{branch_id}", "PATCH"): c.BranchPatch,
        ("/clinics/{clinic_id}/branches/{branch_id}/resources", "POST"): c.ResourceIn,
        ("/clinics/{clinic_id}/services", "POST"): c.ServiceIn,
        ("/clinics/{clinic_id}/services/{service_id}", "PATCH"): c.ServicePatch,
        ("/clinics/{clinic_id}/policies", "PUT"): c.Policies, ("/me/doctor-profile", "PUT"): c.DoctorProfileIn,
        ("/clinics/{clinic_id}/doctors/{doctor_id}/templates", "POST"): c.TemplateIn,
        ("/clinics/{clinic_id}/doctors/{doctor_id}/exceptions", "POST"): c.ExceptionIn,
        ("/clinics/{clinic_id}/doctors/{doctor_id}/duty-shifts", "POST"): c.DutyShiftIn,
        ("/me/schedule/leave", "POST"): c.DoctorLeaveIn,
        ("/clinics/{clinic_id}/doctors/{doctor_id}", "DELETE"): c.DoctorRemoval,
        ("/bookings", "POST"): b.BookingIn, ("/bookings/{booking_id}/reschedule", "POST"): b.RescheduleIn,
        ("/bookings/{booking_id}/reassign", "POST"): b.ReassignIn,
        ("/bookings/{booking_id}/cancel", "POST"): b.CancelIn, ("/bookings/{booking_id}/messages", "POST"): b.MessageIn,
        ("/visit-invitations", "POST"): b.InviteIn, ("/waitlist", "POST"): b.WaitlistIn,
        ("/urgent/{specialty}/queue", "POST"): b.UrgentJoin,
        ("/me/card/{section}", "POST"): entry, ("/me/card/{section}/{entry_id}", "PUT"): entry,
        ("/patients/{patient_id}/card/{section}", "POST"): entry, ("/me/card-grants", "POST"): r.GrantIn,
        ("/bookings/{booking_id}/conclusion", "PUT"): r.ConclusionIn,
        ("/bookings/{booking_id}/conclusion/amendments", "POST"): r.ConclusionIn,
        ("/bookings/{booking_id}/conclusion/sign", "POST"): r.Strict,
        ("/me/card/documents", "POST"): r.DocumentIn, ("/me/card/documents/{document_id}/complete", "POST"): r.Strict,
        ("/patients/{patient_id}/card/documents", "POST"): r.DocumentIn,
        ("/patients/{patient_id}/card/documents/{document_id}/complete", "POST"): r.Strict,
        ("/me/devices", "POST"): n.DeviceIn,
        ("/me/notification-settings", "PUT"): n.PreferencesIn, ("/feedback", "POST"): n.FeedbackIn,
        **payment_bodies(),
        ("/clinics/{clinic_id}/analytics/recalls", "POST"): an.RecallIn,
    }
    # The Stripe webhook's body is Stripe's event, not one of our models.
    ops = {k: v for k, v in operations(spec).items() if k != ("/webhooks/stripe", "POST")}
    assert {k for k, op in ops.items() if "requestBody" in op} == set(bodies)

    def check(model: Any, schema: Any, where: str) -> None:
        schema = resolve(spec, schema)
        assert model.model_config.get("extra") == "forbid", where
        assert set(schema.get("properties", {})) == set(model.model_fields), where
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        assert set(schema.get("required", [])) == required, where
        for name, field in model.model_fields.items():
            prop = flatten(spec, schema["properties"][name])
            if "anyOf" in prop:  # an optional nested model (or an optional plain value)
                nested = [s for s in prop["anyOf"] if resolve(spec, s).get("type") != "null"][0]
                inner = field.annotation.__args__[0]
                if hasattr(inner, "model_fields"):
                    check(inner, nested, f"{where}.{name}")
                continue
            if hasattr(field.annotation, "model_fields"):
                check(field.annotation, prop, f"{where}.{name}")
                continue
            for meta in field.metadata:
                if isinstance(meta, MinLen) and prop.get("type") in ("string", ["string", "null"]):
                    # check_password raises the floor of passwords to 8
                    assert prop.get("minLength", 0) >= meta.min_length, f"{where}.{name} minLength"
                if isinstance(meta, MaxLen) and prop.get("type") in ("string", ["string", "null"]):
                    assert prop.get("maxLength", 10**9) <= meta.max_length, f"{where}.{name} maxLength"
                pattern = getattr(meta, "pattern", None)
                if pattern:
                    assert prop.get("pattern") == pattern, f"{where}.{name} pattern"
            if field.default is not PydanticUndefined and field.default is not None:
                assert prop.get("default") == field.default, f"{where}.{name} default"
            bounded_by_the_model(model, name, field, prop, f"{where}.{name}")

    def refused_at(model: Any, name: str, value: Any) -> bool:
        from pydantic import ValidationError

        try:
            model.model_validate({name: value}, strict=True)
        except ValidationError as exc:
            return any(e["loc"][:1] == (name,) for e in exc.errors())
        return False

    def bounded_by_the_model(model: Any, name: str, field: Any, prop: dict, where: str) -> None:
        """What the spec bounds, the model refuses past the same bound: a string's maxLength (or
        its anchored pattern, which the model has too), an array's maxItems, an integer's range."""
        types = prop.get("type") if isinstance(prop.get("type"), list) else [prop.get("type")]
        metas = list(field.metadata)
        max_len = min((m.max_length for m in metas if isinstance(m, MaxLen)), default=None)
        if "string" in types and "maxLength" in prop and "enum" not in prop and "const" not in prop:
            same_pattern = prop.get("pattern") and any(getattr(m, "pattern", None) == prop["pattern"] for m in metas)
            is_date = prop.get("format") == "date" and "date" in str(field.annotation)
            assert ((max_len is not None and max_len <= prop["maxLength"]) or same_pattern or is_date
                    or refused_at(model, name, "x" * (prop["maxLength"] + 1))), (
                f"{where}: the spec says maxLength {prop['maxLength']}, the model does not refuse longer")
        if "array" in types and "maxItems" in prop:
            assert max_len is not None and max_len <= prop["maxItems"], f"{where}: maxItems {prop['maxItems']}"
        if "integer" in types and "maximum" in prop:
            le = min((m.le for m in metas if getattr(m, "le", None) is not None), default=None)
            assert le is not None and le <= prop["maximum"], f"{where}: maximum {prop['maximum']}"

    for key, model in bodies.items():
        schema = ops[key]["requestBody"]["content"]["application/json"]["schema"]
        if isinstance(model, tuple):
            choices = resolve(spec, schema)["oneOf"]
            assert len(choices) == len(model), key
            for one, sub in zip(model, choices):
                check(one, sub, f"{key} {one.__name__}")
            continue
        check(model, schema, str(key))


def test_query_parameters_mirror_the_pydantic_query_models(spec):
    """Query parameters parsed into a model: the same names, the same required ones, and the
    model's bounds, patterns and defaults (a query parameter the model does not know is 422)."""
    from annotated_types import Ge, Le, MaxLen
    from pydantic_core import PydanticUndefined

    from chalicelib.booking import models as b
    from chalicelib.clinics import catalog_models as cm
    from chalicelib.clinics import models as c
    from chalicelib.notify import models as n
    from chalicelib.records import models as r

    queries = {
        ("/me/card-grants", "GET"): r.Page, ("/me/card-access-log", "GET"): r.Page, ("/me/patients", "GET"): r.Page,
        ("/catalog/doctors/{doctor_id}/slots", "GET"): b.SlotsQuery, ("/me/bookings", "GET"): b.ListQuery,
        ("/me/agenda", "GET"): b.AgendaQuery, ("/clinics/{clinic_id}/calendar", "GET"): b.RangeQuery,
        ("/bookings/{booking_id}/messages", "GET"): b.Page,
        ("/me/waitlist", "GET"): b.Page,
        **{(path, "GET"): c.StaffPage for path in (
            "/me/clinics", "/clinics/{clinic_id}/admins", "/clinics/{clinic_id}/invitations",
            "/clinics/{clinic_id}/branches", "/clinics/{clinic_id}/services", "/clinics/{clinic_id}/resources",
            "/clinics/{clinic_id}/doctors")},
        ("/catalog/clinics/{clinic_id}/services", "GET"): cm.Page,
        ("/catalog/clinics", "GET"): cm.CatalogClinicsQuery, ("/catalog/doctors", "GET"): cm.CatalogDoctorsQuery,
        ("/me/inbox", "GET"): n.InboxQuery, ("/clinics/{clinic_id}/feedback", "GET"): n.FeedbackQuery,
        **payment_queries(),
    }
    ops = operations(spec)
    for key, model in queries.items():
        params = {p["name"]: p for p in map(lambda p: resolve(spec, p), ops[key].get("parameters", []))
                  if p["in"] == "query"}
        assert set(params) == set(model.model_fields), key
        for name, field in model.model_fields.items():
            param, schema = params[name], flatten(spec, params[name]["schema"])
            assert param.get("required", False) == field.is_required(), f"{key} {name} required"
            for meta in field.metadata:
                if isinstance(meta, Ge):
                    assert schema.get("minimum") == meta.ge, f"{key} {name} minimum"
                if isinstance(meta, Le):
                    assert schema.get("maximum") == meta.le, f"{key} {name} maximum"
                if isinstance(meta, MaxLen):
                    assert schema.get("maxLength", 10**9) <= meta.max_length, f"{key} {name} maxLength"
                pattern = getattr(meta, "pattern", None)
                if pattern:
                    assert schema.get("pattern") == pattern, f"{key} {name} pattern"
            if field.default is not PydanticUndefined and field.default is not None:
                assert schema.get("default") == field.default, f"{key} {name} default"


# ------------------------------------------------------------------ examples

def _validator(spec: dict[str, Any], ptr: str):
    try:
        from jsonschema import Draft202012Validator
        from referencing import Registry
        from referencing.jsonschema import DRAFT202012
    except ImportError:  # pragma: no cover - jsonschema comes with schemathesis
        missing("jsonschema is not installed")
    registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec))
    return Draft202012Validator({"$ref": SPEC_URI + ptr}, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def media_examples(spec: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, JSON pointer of the schema, example) for every example in the document."""
    def from_media(base: tuple, media: dict[str, Any]):
        if "schema" not in media:
            return
        if "example" in media:
            yield "/".join(map(str, base)), pointer(*base, "schema"), media["example"]
        for name, ex in media.get("examples", {}).items():
            yield "/".join(map(str, base)) + f" examples.{name}", pointer(*base, "schema"), resolve(spec, ex)["value"]

    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            body = op.get("requestBody", {})
            for ct, media in body.get("content", {}).items():
                yield from from_media(("paths", path, method, "requestBody", "content", ct), media)
            for status, resp in op["responses"].items():
                if "$ref" in resp:
                    continue  # checked once below, under components
                for ct, media in resp.get("content", {}).items():
                    yield from from_media(("paths", path, method, "responses", status, "content", ct), media)
            for i, param in enumerate(op.get("parameters", [])):
                if "$ref" not in param and "example" in param:
                    yield f"{path} {method} {param['name']}", pointer("paths", path, method, "parameters", i, "schema"), param["example"]
    for name, resp in spec["components"]["responses"].items():
        for ct, media in resp.get("content", {}).items():
            yield from from_media(("components", "responses", name, "content", ct), media)
    for name, param in spec["components"]["parameters"].items():
        base = ("components", "parameters", name)
        if "example" in param:
            yield "/".join(base), pointer(*base, "schema"), param["example"]
        for ex_name, ex in param.get("examples", {}).items():
            yield "/".join(base) + f" examples.{ex_name}", pointer(*base, "schema"), ex["value"]

    def schema_examples(node: Any, base: tuple) -> Iterator[tuple[str, str, Any]]:
        if isinstance(node, dict):
            if isinstance(node.get("examples"), list) and ("type" in node or "$ref" in node or "properties" in node):
                for i, ex in enumerate(node["examples"]):
                    yield "/".join(map(str, base)) + f" examples[{i}]", pointer(*base), ex
            for k, v in node.items():
                if k != "examples":
                    yield from schema_examples(v, base + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from schema_examples(v, base + (i,))

    yield from schema_examples(spec["components"]["schemas"], ("components", "schemas"))


def test_every_example_is_valid_against_its_schema(spec):
    found = list(media_examples(spec))
    assert len(found) > 40, "examples were expected throughout the document"
    failures = []
    for where, ptr, example in found:
        errors = sorted(_validator(spec, ptr).iter_errors(example), key=lambda e: list(e.path))
        failures += [f"{where}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]
    assert failures == []


def test_every_request_body_and_success_response_has_an_example(spec):
    for key, op in operations(spec).items():
        media = op.get("requestBody", {}).get("content", {}).get("application/json")
        if media is not None:
            assert "example" in media or media.get("examples"), f"{key} request body"
        for status, resp in op["responses"].items():
            for ct, m in resolve(spec, resp).get("content", {}).items():
                assert "example" in m or m.get("examples"), f"{key} {status} {ct}"


def test_the_document_is_valid_openapi_3_1(spec):
    try:
        import openapi_spec_validator as validator
    except ImportError:  # comes with schemathesis
        missing("openapi_spec_validator is not installed")
    assert spec["openapi"].startswith("3.1")
    validator.validate(spec)


# ------------------------------------------------------------------ served by the app

def test_the_package_links_to_the_top_level_contract():
    link = ROOT / "chalicelib" / "meta" / "openapi.yaml"
    assert link.is_symlink() and link.resolve() == SPEC_PATH.resolve()


def test_the_app_serves_the_contract_as_yaml_and_json(client, spec):
    r = client.http.get("/openapi.yaml")
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0] == "application/yaml"
    assert r.body.decode("utf-8") == SPEC_PATH.read_text(encoding="utf-8")

    r = client.http.get("/openapi.json")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert json.loads(r.body) == spec


def test_the_app_serves_a_self_contained_docs_page(client):
    r = client.http.get("/docs", headers={"Accept-Language": "en"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    html = r.body.decode("utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>") and '<html lang="en">' in html
    assert "/openapi.json" in html and "Try it" in html
    # Nothing from elsewhere: the CSP would block it, and the page must work offline.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, re.I)
    assert not re.search(r"""@import|url\(\s*["']?(?:https?:)?//""", html, re.I)
    # Every form control is labelled.
    ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\sid="([^"]+)"', html))
    labelled = set(re.findall(r'<label[^>]*\sfor="([^"]+)"', html))
    assert ids and ids <= labelled


def test_date_time_patterns_admit_no_impossible_date_or_time(spec):
    """A pattern that admits a real instant or local date-time refuses month 00, day 00, 25 o'clock,
    minute 61 and the year 0000 (JSON Schema cannot say calendar validity; the server answers 422)."""
    import re

    def patterns(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            for v in node.values():
                yield from patterns(v)
        elif isinstance(node, list):
            for v in node:
                yield from patterns(v)

    real = ["2026-12-07T07:00:00Z", "2026-12-07T09:00:00+02:00", "2026-12-07T09:00+02:00", "2026-12-01T20:00"]
    impossible = ["0000-00-00T00:00:00Z", "2026-00-07T07:00:00Z", "2026-12-00T07:00:00Z", "2026-12-07T25:00:00Z",
                  "2026-12-07T09:61+02:00", "0000-00-00T00:00+02:00", "2026-13-01T20:00", "0000-00-00T00:00"]
    checked = 0
    for p in set(patterns(spec)):
        rx = re.compile(p)
        if "T" not in p or not any(rx.search(r) for r in real):  # not a date-time pattern
            continue
        checked += 1
        assert [i for i in impossible if rx.search(i)] == [], p
    assert checked >= 3
