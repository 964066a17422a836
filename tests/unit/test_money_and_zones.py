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


@pytest.mark.parametrize("moment,zone_name,day", [
    ("2026-12-01T12:59:59Z", "Asia/Sakhalin", "2026-12-01"),  # 23:59:59 in Yuzhno-Sakhalinsk (UTC+11)
    ("2026-12-01T13:00:00Z", "Asia/Sakhalin", "2026-12-02"),  # its midnight, still 1 December in UTC
    ("2026-12-01T21:59:59Z", "Europe/Kaliningrad", "2026-12-01"),
    ("2026-12-01T22:00:00Z", "Europe/Kaliningrad", "2026-12-02"),
    ("2026-03-28T23:00:00Z", "Europe/Berlin", "2026-03-29"),  # the night of the spring change: CET midnight
    ("2026-10-24T22:00:00Z", "Europe/Berlin", "2026-10-25"),  # the autumn change's day starts in CEST
    ("2026-10-24T21:59:59Z", "Europe/Berlin", "2026-10-24"),
    ("2026-12-01T23:30:00Z", None, "2026-12-01"),  # no zone: the UTC day
])
def test_one_local_day_rule_for_every_feature(moment, zone_name, day):
    from datetime import date, datetime

    from chalicelib.core.tz import local_day

    assert local_day(moment, zone_name) == date.fromisoformat(day)
    as_instant = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    assert local_day(as_instant, zone_name) == date.fromisoformat(day)


def test_a_local_day_refuses_a_zone_that_is_not_iana():
    from chalicelib.core.tz import local_day

    with pytest.raises(TimeZoneError):
        local_day("2026-12-01T12:00:00Z", "MSK")
