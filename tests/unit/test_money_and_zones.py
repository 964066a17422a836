"""Money in minor units and IANA zones, the conventions every feature relies on."""
import pytest

from chalicelib.core.money import Money, MoneyError
from chalicelib.core.tz import TimeZoneError, zone


def test_percentages_round_half_up_in_minor_units():
    assert Money(650050, "RUB").percent(3000) == Money(195015, "RUB")
    assert Money(5, "RUB").percent(5000) == Money(3, "RUB")  # 2.5 kopecks -> 3
    assert Money(100, "JPY").percent(3333).amount == 33


def test_money_refuses_floats_unknown_currencies_and_mixing():
    with pytest.raises(MoneyError):
        Money(10.5, "RUB")
    with pytest.raises(MoneyError):
        Money(10, "XXX")
    with pytest.raises(MoneyError):
        Money(10, "RUB") + Money(10, "EUR")


@pytest.mark.parametrize("name", ["MSK", "+03:00", "Europe/Atlantis", "UTC+3"])
def test_only_iana_zones(name):
    with pytest.raises(TimeZoneError):
        zone(name)
