"""Payments: requests, queries and the shapes a payment and a refund are stored and shown in."""
from __future__ import annotations

from datetime import date  # noqa: F401  (Day fields are dates)
from typing import Any, Literal, Optional, TypedDict

from pydantic import ConfigDict, Field, field_validator, model_validator

from chalicelib.clinics.models import MoneyIn
from chalicelib.core.model import Day, Model, fields_error
from chalicelib.identity.models import Strict

_ID = r"^[0-9A-HJKMNP-TV-Z]{26}$"
PAYMENT_ID = r"^[0-9A-HJKMNP-TV-Z]{26}-[1-9][0-9]{0,3}$"  # <booking id>-<attempt>
MAX_INT = 2_147_483_647

Method = Literal["online", "link", "cash", "card_terminal"]
# pending: waiting for the money; succeeded: paid (refunded_total tells how much went back);
# failed: the last try was declined (the patient may try again); cancelled: ended without money
Status = Literal["pending", "succeeded", "failed", "cancelled"]


def _integer(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError("an integer number of minor units; fractions of a minor unit are not money")
    return v


class Payment(TypedDict, total=False):
    """A payment as stored (``store.payment_item``) and shown (``service.view``)."""
    payment_id: str
    booking_id: str
    patient_id: str
    clinic_id: str
    doctor_id: str
    service_name: dict[str, str]
    clinic_name: dict[str, str]
    visit_start_utc: str
    time_zone: str
    method: str
    status: str
    amount: int               # what the patient pays with money (minor units)
    currency: str
    cashback_spent: int       # what the wallet covers
    refunded_total: int
    provider: str             # stripe | desk
    intent_id: str            # the provider's PaymentIntent (online, link)
    checkout_id: str          # the provider's Checkout Session (link)
    received_by: dict[str, str]  # reception: {"user_id", "name"}
    created_at: str
    paid_at: str
    local_day: str            # the paid day in the clinic's zone (filters, daily totals)
    version: int
    refund_due: str           # why a payment that succeeded must go back in full (no visit for it)


class PaymentIn(Strict):
    cashback_spend: int = Field(default=0, ge=0, le=MAX_INT, description="minor units of cashback to spend")

    _int = field_validator("cashback_spend", mode="before")(classmethod(lambda cls, v: _integer(v)))


class LinkIn(Strict):
    booking_id: str = Field(pattern=_ID)


class ReceptionIn(Strict):
    booking_id: str = Field(pattern=_ID)
    method: Literal["cash", "card_terminal"]
    amount: MoneyIn
    received_by: Optional[str] = Field(default=None, min_length=1, max_length=100,
                                       description="who took the money at the desk (defaults to the caller)")


class RefundIn(Strict):
    amount: int = Field(ge=1, le=MAX_INT, description="minor units to give back")
    reason: str = Field(min_length=3, max_length=500)

    _int = field_validator("amount", mode="before")(classmethod(lambda cls, v: _integer(v)))


class PayoutIn(Strict):
    paid_out_by: Optional[str] = Field(default=None, min_length=1, max_length=100,
                                       description="who handed the money back at the desk (defaults to the caller)")


class HistoryQuery(Model):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)


class TransactionsQuery(Model):
    model_config = ConfigDict(extra="forbid")
    date_from: Day
    date_to: Day
    # refund: every refund; refund_owed: refunds still to be handed back at the reception
    status: Optional[Literal["succeeded", "refunded", "partially_refunded", "refund", "refund_owed"]] = None
    method: Optional[Method] = None
    doctor_id: Optional[str] = Field(default=None, pattern=_ID)
    limit: int = Field(default=50, ge=1, le=100)
    cursor: Optional[str] = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _range(self) -> "TransactionsQuery":
        # named at the fields (a bare ValueError is reported at the model, ``body``)
        if self.date_to < self.date_from:
            raise fields_error("end_before_start", "date_to is before date_from", "date_to", "date_from")
        if (self.date_to - self.date_from).days > 366:
            raise fields_error("range_too_long", "at most 366 days after date_from", "date_to")
        return self


class TotalsQuery(Model):
    model_config = ConfigDict(extra="forbid")
    date_from: Day
    date_to: Day

    @model_validator(mode="after")
    def _range(self) -> "TotalsQuery":
        # named at the fields (a bare ValueError is reported at the model, ``body``)
        if self.date_to < self.date_from:
            raise fields_error("end_before_start", "date_to is before date_from", "date_to", "date_from")
        if (self.date_to - self.date_from).days > 92:
            raise fields_error("range_too_long", "at most 92 days after date_from", "date_to")
        return self


__all__ = ["MoneyIn", "Payment", "PaymentIn", "LinkIn", "ReceptionIn", "RefundIn", "PayoutIn", "HistoryQuery",
           "TransactionsQuery", "TotalsQuery"]
