"""identity.access: who may act, decided once, as other features will ask it."""
import pytest

from chalicelib.core.errors import AppError
from chalicelib.core.web import Caller
from chalicelib.identity import access


def caller(role="patient", mfa="sms"):
    return Caller(user_id="u", role=role, session_id="s", mfa=mfa)


def test_a_role_outside_the_allowed_ones_is_403_role_not_allowed():
    access.require_role(caller("doctor"), "doctor", "clinic_admin")
    with pytest.raises(AppError) as err:
        access.require_role(caller("patient"), "doctor", "clinic_admin")
    assert (err.value.status, err.value.code) == (403, "role_not_allowed")
    assert access.has_role(caller("platform_admin"), "platform_admin")
    assert not access.has_role(None, "patient")


def test_staff_work_needs_the_role_and_an_authenticator_app_session():
    access.require_staff(caller("clinic_admin", "totp"), "clinic_admin")
    with pytest.raises(AppError) as err:
        access.require_staff(caller("clinic_admin", "sms"), "clinic_admin")
    assert (err.value.status, err.value.code) == (403, "totp_required")
    with pytest.raises(AppError) as err:
        access.require_totp(caller("doctor", "sms"))
    assert err.value.code == "totp_required"


def test_a_misspelt_role_is_a_programming_error_not_a_silent_403():
    with pytest.raises(ValueError):
        access.require_role(caller("doctor"), "docter")
