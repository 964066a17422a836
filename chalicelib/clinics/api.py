"""HTTP routes of clinic onboarding (staff) and the public catalogue."""
from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Blueprint

from chalicelib import bootstrap
from chalicelib.core.lazy import lazy_module
from chalicelib.core.web import json_response, language, no_content, parse_query, route
from chalicelib.identity.api import body
from chalicelib.identity.authorizer import token_authorizer

if TYPE_CHECKING:
    from chalicelib.clinics import catalog_models as cm
    from chalicelib.clinics import models as m
else:  # the models load with the first route that uses them (cold start); the catalogue's are few, apart
    m = lazy_module("chalicelib.clinics.models")
    cm = lazy_module("chalicelib.clinics.catalog_models")

bp = Blueprint(__name__)
AUTH = {"authorizer": token_authorizer}
C = "/clinics/{clinic_id}"


def service():
    return bootstrap.clinics()


def created(result):
    return json_response(result, 201)


# ------------------------------------------------------------------ clinic life

@route(bp, "/clinics", methods=("POST",), **AUTH)
def create_clinic(request, caller):
    return created(service().create_clinic(caller, body(request, m.ClinicCreate)))


@route(bp, "/me/clinics", **AUTH)
def my_clinics(request, caller):
    return service().my_clinics(caller, parse_query(request, m.StaffPage))


@route(bp, C, **AUTH)
def get_clinic(request, caller, clinic_id):
    return service().get_clinic(caller, clinic_id)


@route(bp, C, methods=("PATCH",), **AUTH)
def patch_clinic(request, caller, clinic_id):
    return service().patch_clinic(caller, clinic_id, body(request, m.ClinicPatch))


@route(bp, C + "/submit", methods=("POST",), **AUTH)
def submit_clinic(request, caller, clinic_id):
    return service().submit(caller, clinic_id)


@route(bp, C + "/verify", methods=("POST",), **AUTH)
def verify_clinic(request, caller, clinic_id):
    return service().verify(caller, clinic_id)


@route(bp, C + "/reject", methods=("POST",), **AUTH)
def reject_clinic(request, caller, clinic_id):
    return service().reject(caller, clinic_id, body(request, m.Rejection))


@route(bp, C + "/activate", methods=("POST",), **AUTH)
def activate_clinic(request, caller, clinic_id):
    return service().activate(caller, clinic_id)


@route(bp, "/admin/clinics", **AUTH)
def review_queue(request, caller):
    return service().review_queue(caller, parse_query(request, m.AdminClinicsQuery))


# ------------------------------------------------------------------ administrators and invitations

@route(bp, C + "/admins", **AUTH)
def list_admins(request, caller, clinic_id):
    return service().list_admins(caller, clinic_id, parse_query(request, m.StaffPage))


@route(bp, C + "/admins/{user_id}", methods=("DELETE",), **AUTH)
def remove_admin(request, caller, clinic_id, user_id):
    service().remove_admin(caller, clinic_id, user_id)
    return no_content()


@route(bp, C + "/invitations", methods=("POST",), **AUTH)
def invite(request, caller, clinic_id):
    return created(service().invite(caller, clinic_id, body(request, m.InvitationIn), language(request)))


@route(bp, C + "/invitations", **AUTH)
def list_invitations(request, caller, clinic_id):
    return service().list_invitations(caller, clinic_id, parse_query(request, m.StaffPage))


@route(bp, C + "/invitations/{invitation_id}", methods=("DELETE",), **AUTH)
def revoke_invitation(request, caller, clinic_id, invitation_id):
    service().revoke_invitation(caller, clinic_id, invitation_id)
    return no_content()


@route(bp, "/invitations/accept", methods=("POST",), **AUTH)
def accept_invitation(request, caller):
    return service().accept_invitation(caller, body(request, m.InvitationAccept))


# ------------------------------------------------------------------ branches, resources, services, policies

@route(bp, C + "/branches", methods=("POST",), **AUTH)
def add_branch(request, caller, clinic_id):
    return created(service().add_branch(caller, clinic_id, body(request, m.BranchIn)))


@route(bp, C + "/branches", **AUTH)
def list_branches(request, caller, clinic_id):
    return service().list_branches(caller, clinic_id, parse_query(request, m.StaffPage))


@route(bp, C + "/branches/{branch_id}", methods=("PATCH",), **AUTH)
def patch_branch(request, caller, clinic_id, branch_id):
    return service().patch_branch(caller, clinic_id, branch_id, body(request, m.BranchPatch))


@route(bp, C + "/branches/{branch_id}/resources", methods=("POST",), **AUTH)
def add_resource(request, caller, clinic_id, branch_id):
    return created(service().add_resource(caller, clinic_id, branch_id, body(request, m.ResourceIn)))


@route(bp, C + "/resources", **AUTH)
def list_resources(request, caller, clinic_id):
    return service().list_resources(caller, clinic_id, parse_query(request, m.StaffPage))


@route(bp, C + "/services", methods=("POST",), **AUTH)
def add_service(request, caller, clinic_id):
    return created(service().add_service(caller, clinic_id, body(request, m.ServiceIn)))


@route(bp, C + "/services", **AUTH)
def list_services(request, caller, clinic_id):
    return service().list_services(caller, clinic_id, parse_query(request, m.StaffPage))


@route(bp, C + "/services/{service_id}", methods=("PATCH",), **AUTH)
def patch_service(request, caller, clinic_id, service_id):
    return service().patch_service(caller, clinic_id, service_id, body(request, m.ServicePatch))


@route(bp, C + "/policies", methods=("PUT",), **AUTH)
def set_policies(request, caller, clinic_id):
    return service().set_policies(caller, clinic_id, body(request, m.Policies))


@route(bp, C + "/payouts/onboarding", methods=("POST",), **AUTH)
def start_payouts(request, caller, clinic_id):
    return created(service().start_payouts(caller, clinic_id))


@route(bp, C + "/payouts", **AUTH)
def payouts(request, caller, clinic_id):
    return service().payouts(caller, clinic_id)


# ------------------------------------------------------------------ doctors and schedules

@route(bp, C + "/doctors", **AUTH)
def list_doctors(request, caller, clinic_id):
    return service().list_doctors(caller, clinic_id, parse_query(request, m.StaffPage))


@route(bp, C + "/doctors/{doctor_id}", methods=("DELETE",), **AUTH)
def remove_doctor(request, caller, clinic_id, doctor_id):
    service().remove_doctor(caller, clinic_id, doctor_id, body(request, m.DoctorRemoval))
    return no_content()


@route(bp, C + "/doctors/{doctor_id}/schedule", **AUTH)
def doctor_schedule(request, caller, clinic_id, doctor_id):
    return service().clinic_schedule(caller, clinic_id, doctor_id)


@route(bp, C + "/doctors/{doctor_id}/templates", methods=("POST",), **AUTH)
def add_template(request, caller, clinic_id, doctor_id):
    return created(service().add_template(caller, clinic_id, doctor_id, body(request, m.TemplateIn)))


@route(bp, C + "/doctors/{doctor_id}/exceptions", methods=("POST",), **AUTH)
def add_exception(request, caller, clinic_id, doctor_id):
    return created(service().add_exception(caller, clinic_id, doctor_id, body(request, m.ExceptionIn)))


@route(bp, C + "/doctors/{doctor_id}/duty-shifts", methods=("POST",), **AUTH)
def add_duty_shift(request, caller, clinic_id, doctor_id):
    return created(service().add_duty_shift(caller, clinic_id, doctor_id, body(request, m.DutyShiftIn)))


@route(bp, C + "/doctors/{doctor_id}/templates/{item_id}", methods=("DELETE",), **AUTH)
def delete_template(request, caller, clinic_id, doctor_id, item_id):
    service().delete_schedule_item(caller, clinic_id, doctor_id, "templates", item_id)
    return no_content()


@route(bp, C + "/doctors/{doctor_id}/exceptions/{item_id}", methods=("DELETE",), **AUTH)
def delete_exception(request, caller, clinic_id, doctor_id, item_id):
    service().delete_schedule_item(caller, clinic_id, doctor_id, "exceptions", item_id)
    return no_content()


@route(bp, C + "/doctors/{doctor_id}/duty-shifts/{item_id}", methods=("DELETE",), **AUTH)
def delete_duty_shift(request, caller, clinic_id, doctor_id, item_id):
    service().delete_schedule_item(caller, clinic_id, doctor_id, "duty-shifts", item_id)
    return no_content()


@route(bp, "/me/doctor-profile", **AUTH)
def doctor_profile(request, caller):
    return service().doctor_profile(caller)


@route(bp, "/me/doctor-profile", methods=("PUT",), **AUTH)
def put_doctor_profile(request, caller):
    return service().put_doctor_profile(caller, body(request, m.DoctorProfileIn))


@route(bp, "/me/schedule", **AUTH)
def my_schedule(request, caller):
    return service().my_schedule(caller)


@route(bp, "/me/schedule/leave", methods=("POST",), **AUTH)
def add_my_leave(request, caller):
    return created(service().add_my_leave(caller, body(request, m.DoctorLeaveIn)))


@route(bp, "/me/schedule/leave/{item_id}", methods=("DELETE",), **AUTH)
def delete_my_leave(request, caller, item_id):
    service().delete_my_leave(caller, item_id)
    return no_content()


# ------------------------------------------------------------------ Stripe webhook (signature verified)

@route(bp, "/webhooks/stripe", methods=("POST",))
def stripe_webhook(request, caller):
    from chalicelib.core.errors import AppError

    signature = (request.headers or {}).get("stripe-signature")
    if not signature:
        raise AppError(code="invalid_signature", status=400)
    event = service().stripe.parse_webhook(request.raw_body or b"", signature)
    return service().handle_stripe_event(event)


# ------------------------------------------------------------------ public catalogue

@route(bp, "/catalog/clinics")
def catalog_clinics(request, caller):
    return service().catalog_clinics(parse_query(request, cm.CatalogClinicsQuery))


@route(bp, "/catalog/clinics/{clinic_id}")
def catalog_clinic(request, caller, clinic_id):
    return service().catalog_clinic(clinic_id)


@route(bp, "/catalog/clinics/{clinic_id}/services")
def catalog_services(request, caller, clinic_id):
    return service().catalog_services(clinic_id, parse_query(request, cm.Page))


@route(bp, "/catalog/doctors")
def catalog_doctors(request, caller):
    return service().catalog_doctors(parse_query(request, cm.CatalogDoctorsQuery))


@route(bp, "/catalog/doctors/{doctor_id}")
def catalog_doctor(request, caller, doctor_id):
    return service().catalog_doctor(doctor_id)
