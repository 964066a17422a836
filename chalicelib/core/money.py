"""Money as integer minor units with an ISO 4217 currency. Never floats."""
from __future__ import annotations

from dataclasses import dataclass

# Minor-unit exponent for the currencies clinics on the platform bill in.
# ISO 4217; extend when a clinic registers in a new country.
MINOR_UNITS: dict[str, int] = {
    "RUB": 2, "KZT": 2, "BYN": 2, "UZS": 2, "AMD": 2, "GEL": 2, "AZN": 2, "KGS": 2,
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "TRY": 2, "AED": 2, "CNY": 2, "INR": 2,
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0,
    "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "TND": 3,
}


class MoneyError(ValueError):
    pass


@dataclass(frozen=True)
class Money:
    amount: int  # minor units
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError("amount must be an integer number of minor units")
        if self.currency not in MINOR_UNITS:
            raise MoneyError(f"unsupported currency {self.currency!r}")

    def _same(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise MoneyError("cannot combine different currencies")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def percent(self, basis_points: int) -> "Money":
        """A share of this amount in basis points (1 % = 100), rounded half up."""
        return Money((self.amount * basis_points + 5000) // 10000, self.currency)

    def as_dict(self) -> dict:
        return {"amount": self.amount, "currency": self.currency}
