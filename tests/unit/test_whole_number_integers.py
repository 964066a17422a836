"""A whole number written with a fraction (`763.0`, `1e0`) is a JSON Schema integer, so the contract
allows it wherever it says `type: integer`: the API accepts it as that integer. A number with a real
fraction is still a 422 naming the field, and a number is still never a string or a boolean."""
from tests.conftest import body, sign_up

PHONE = "+79165550123"


def patch_me(client, token, raw: bytes):
    return client.http.patch("/me", headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                             body=raw)


def test_a_whole_number_with_a_fraction_is_the_integer(client, outbox):
    token = sign_up(client, outbox, PHONE)["access_token"]
    r = patch_me(client, token, b'{"first_name": "\\u041c\\u0430\\u0440\\u0438\\u044f", "version": 1.0}')
    assert r.status_code == 200, r.body
    assert body(r)["first_name"] == "Мария" and body(r)["version"] == 2
    r = patch_me(client, token, b'{"first_name": "Marie", "version": 2e0}')
    assert r.status_code == 200, r.body
    assert body(r)["first_name"] == "Marie" and body(r)["version"] == 3


def test_a_real_fraction_is_refused_naming_the_field_and_changes_nothing(client, outbox):
    token = sign_up(client, outbox, PHONE)["access_token"]
    r = patch_me(client, token, b'{"first_name": "Marie", "version": 1.5}')
    assert r.status_code == 422, r.body
    problem = body(r)
    assert r.headers["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in problem["errors"]] == ["version"]
    me = client.http.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert body(me)["first_name"] == "Анна" and body(me)["version"] == 1


def test_numbers_are_still_not_strings_nor_booleans(client, outbox):
    token = sign_up(client, outbox, PHONE)["access_token"]
    r = patch_me(client, token, b'{"first_name": 12.0}')
    assert r.status_code == 422 and [e["field"] for e in body(r)["errors"]] == ["first_name"], r.body
    r = patch_me(client, token, b'{"first_name": "Marie", "version": "1"}')
    assert r.status_code == 422 and [e["field"] for e in body(r)["errors"]] == ["version"], r.body
    r = patch_me(client, token, b'{"first_name": "Marie", "version": true}')
    assert r.status_code == 422 and [e["field"] for e in body(r)["errors"]] == ["version"], r.body
