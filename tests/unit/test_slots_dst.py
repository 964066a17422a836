"""Local wall time to UTC across daylight-saving changes, and local days in far-apart zones.

The rules (chalicelib/core/tz.py, ``local_to_utc``):
- a wall time inside a spring-forward gap moves forward to the first instant after the jump
  (Europe/Berlin 2026-03-29 02:30 does not exist -> 03:00 CEST, 01:00Z);
- a wall time that happens twice in the autumn fold is its first occurrence (fold=0)
  (Europe/Berlin 2026-10-25 02:30 -> 02:30 CEST, 00:30Z), for starts and ends alike;
- intervals are real UTC instants: a 01:00-04:00 template is 2 real hours on 29 March and 4 on 25 October.
"""
from datetime import date, datetime, time, timedelta, timezone

import pytest

from chalicelib.booking import slots as sl
from chalicelib.clinics.schedule import template_occurrences
from chalicelib.core.tz import local_to_utc
from tests.conftest import jpost
from tests.unit.clinic_setup import SERVICE, branch, ok, world

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ------------------------------------------------------------------ the conversion itself

@pytest.mark.parametrize("wall, expected", [
    (time(1, 59), utc(2026, 3, 29, 0, 59)),   # last minute of CET
    (time(2, 0), utc(2026, 3, 29, 1, 0)),     # the gap starts: moves forward to 03:00 CEST
    (time(2, 30), utc(2026, 3, 29, 1, 0)),    # inside the gap: 03:00 CEST, never 01:30 CET
    (time(2, 55), utc(2026, 3, 29, 1, 0)),
    (time(3, 0), utc(2026, 3, 29, 1, 0)),     # first wall time after the jump
    (time(3, 30), utc(2026, 3, 29, 1, 30)),
])
def test_a_wall_time_in_the_spring_gap_moves_forward_to_the_end_of_the_gap(wall, expected):
    assert local_to_utc(date(2026, 3, 29), wall, "Europe/Berlin") == expected


@pytest.mark.parametrize("wall, expected", [
    (time(1, 59), utc(2026, 10, 24, 23, 59)),
    (time(2, 0), utc(2026, 10, 25, 0, 0)),    # first 02:00 (CEST)
    (time(2, 30), utc(2026, 10, 25, 0, 30)),  # first 02:30 (CEST), not the second at 01:30Z
    (time(3, 0), utc(2026, 10, 25, 2, 0)),    # 03:00 CET: the fold lies between
])
def test_a_wall_time_in_the_autumn_fold_is_its_first_occurrence(wall, expected):
    assert local_to_utc(date(2026, 10, 25), wall, "Europe/Berlin") == expected


def test_the_conversion_never_runs_backwards_in_a_gap_or_a_fold():
    """Later wall time never gives an earlier instant: every 5 minutes through both change nights."""
    for day in (date(2026, 3, 29), date(2026, 10, 25)):
        walls = [time(h, m) for h in range(0, 6) for m in range(0, 60, 5)]
        instants = [local_to_utc(day, w, "Europe/Berlin") for w in walls]
        assert instants == sorted(instants), day


def test_zones_without_dst_are_plain_offsets():
    assert local_to_utc(date(2026, 3, 29), time(2, 30), "Europe/Kaliningrad") == utc(2026, 3, 29, 0, 30)
    assert local_to_utc(date(2026, 10, 25), time(2, 30), "Europe/Kaliningrad") == utc(2026, 10, 25, 0, 30)
    assert local_to_utc(date(2026, 11, 30), time(8, 0), "Asia/Sakhalin") == utc(2026, 11, 29, 21, 0)
    assert local_to_utc(date(2026, 11, 30), time(23, 0), "Asia/Sakhalin") == utc(2026, 11, 30, 12, 0)


@pytest.mark.parametrize("start, end, real_minutes", [
    (time(1, 0), time(4, 0), 120),    # crosses the gap: 2 real hours
    (time(1, 45), time(2, 15), 15),   # ends in the gap: 01:45 CET to 03:00 CEST
    (time(2, 30), time(4, 0), 60),    # starts in the gap: 03:00 to 04:00 CEST
    (time(2, 0), time(2, 30), 0),     # wholly inside the gap: no working time that day
])
def test_templates_across_the_spring_gap_never_end_before_they_start(start, end, real_minutes):
    ivs = list(template_occurrences("sun", start, end, "Europe/Berlin", date(2026, 3, 29), date(2026, 3, 29)))
    assert all(e > s for s, e in ivs), ivs
    assert sum(((e - s) for s, e in ivs), timedelta()) == timedelta(minutes=real_minutes)


def test_a_template_across_the_autumn_fold_is_four_real_hours():
    ivs = list(template_occurrences("sun", time(1, 0), time(4, 0), "Europe/Berlin", date(2026, 10, 25),
                                    date(2026, 10, 25)))
    assert ivs == [(utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 3, 0))]


def test_slots_across_the_gap_all_have_the_service_length():
    work = [((local_to_utc(date(2026, 3, 29), time(1, 0), "Europe/Berlin"),
              local_to_utc(date(2026, 3, 29), time(4, 0), "Europe/Berlin")), "b", "Europe/Berlin")]
    got = sl.candidate_slots(work, timedelta(minutes=40))
    assert [e - s for (s, e), _, _ in got] == [timedelta(minutes=40)] * 3


def test_a_leave_in_the_gap_takes_out_real_time_only():
    """Leave 02:00-03:30 on 29 March in Berlin removes 03:00-03:30 CEST (the hour before does not exist)."""
    leave = {"type": "schedule_exception", "kind": "leave", "date_from": "2026-03-29", "date_until": "2026-03-29",
             "start": "02:00", "end": "03:30", "clinic_id": "c"}
    tpl = {"type": "schedule_template", "clinic_id": "c", "modality": "in_person", "branch_id": "b",
           "weekday": "sun", "start": "01:00", "end": "05:00", "time_zone": "Europe/Berlin"}
    got = sl.working_intervals([tpl, leave], "c", "in_person", None, date(2026, 3, 29), date(2026, 3, 29))
    assert [iv for iv, _, _ in got] == [(utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0)),
                                        (utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 3, 0))]


# ------------------------------------------------------------------ through the public API

CONSULT = {**SERVICE, "name": {"ru": "Консультация", "en": "Consultation"}, "resource_kinds": [],
           "duration_minutes": 30}


def zoned_world(client, outbox, fixed_clock, now: datetime, zone: str, city: str, minutes: int = 30):
    """The onboarded clinic of clinic_setup.world(), set up at ``now``, with a branch in ``zone`` and a
    consultation without resources."""
    fixed_clock.set(now)
    w = world(client, outbox, fixed_clock)
    cid, token = w["a"]["clinic_id"], w["admin_a"]["token"]
    w["zone_branch"] = ok(jpost(client, f"/clinics/{cid}/branches", branch(city, zone, "Филиал"), token=token),
                          201)["branch_id"]
    w["consult"] = ok(jpost(client, f"/clinics/{cid}/services", {**CONSULT, "duration_minutes": minutes},
                            token=token), 201)["service_id"]
    return w


def template(client, w, weekday, start, end):
    return ok(jpost(client, f"/clinics/{w['a']['clinic_id']}/doctors/{w['doctor']['user_id']}/templates",
                    {"branch_id": w["zone_branch"], "modality": "in_person", "weekday": weekday, "start": start,
                     "end": end}, token=w["admin_a"]["token"]), 201)


def zone_slots(client, w, day, until=None):
    q = (f"/catalog/doctors/{w['doctor']['user_id']}/slots?clinic_id={w['a']['clinic_id']}"
         f"&service_id={w['consult']}&branch_id={w['zone_branch']}&date_from={day}&date_to={until or day}")
    return ok(client.http.get(q))["items"]


def test_sakhalin_morning_and_late_evening_belong_to_the_local_day(client, outbox, fixed_clock):
    w = zoned_world(client, outbox, fixed_clock, utc(2026, 11, 24, 6), "Asia/Sakhalin", "Южно-Сахалинск")
    template(client, w, "mon", "08:00", "09:00")   # Sunday 21:00-22:00 UTC
    template(client, w, "mon", "22:30", "23:30")   # Monday 11:30-12:30 UTC
    monday = zone_slots(client, w, "2026-11-30")
    assert [(s["start"], s["local"]) for s in monday] == [
        ("2026-11-29T21:00:00Z", "2026-11-30T08:00+11:00"), ("2026-11-29T21:30:00Z", "2026-11-30T08:30+11:00"),
        ("2026-11-30T11:30:00Z", "2026-11-30T22:30+11:00"), ("2026-11-30T12:00:00Z", "2026-11-30T23:00+11:00")]
    assert all(s["time_zone"] == "Asia/Sakhalin" for s in monday)
    assert zone_slots(client, w, "2026-11-29") == []   # Sunday: nothing, though 21:00Z is a Sunday in UTC
    assert zone_slots(client, w, "2026-12-01") == []   # Tuesday: nothing, though 12:00Z is near its start
    assert zone_slots(client, w, "2026-11-30", "2026-12-07")[-1]["local"] == "2026-12-07T23:00+11:00"


def test_kaliningrad_keeps_its_hours_when_europe_changes_clocks(client, outbox, fixed_clock):
    w = zoned_world(client, outbox, fixed_clock, utc(2026, 3, 16, 6), "Europe/Kaliningrad", "Калининград")
    template(client, w, "sun", "02:00", "03:00")
    got = zone_slots(client, w, "2026-03-22", "2026-03-29")
    assert [s["start"] for s in got] == ["2026-03-22T00:00:00Z", "2026-03-22T00:30:00Z",
                                         "2026-03-29T00:00:00Z", "2026-03-29T00:30:00Z"]
    assert {s["local"][16:] for s in got} == {"+02:00"}


def test_berlin_spring_forward_through_the_api(client, outbox, fixed_clock):
    w = zoned_world(client, outbox, fixed_clock, utc(2026, 3, 16, 6), "Europe/Berlin", "Berlin")
    template(client, w, "sun", "01:00", "02:00")
    template(client, w, "sun", "02:30", "04:00")   # starts in the gap on 29 March
    before = zone_slots(client, w, "2026-03-22")
    assert [s["local"][11:] for s in before] == ["01:00+01:00", "01:30+01:00", "02:30+01:00", "03:00+01:00",
                                                 "03:30+01:00"]
    change = zone_slots(client, w, "2026-03-29")
    # 02:30 does not exist: that window starts when the clock resumes at 03:00 CEST
    assert [(s["start"], s["local"]) for s in change] == [
        ("2026-03-29T00:00:00Z", "2026-03-29T01:00+01:00"), ("2026-03-29T00:30:00Z", "2026-03-29T01:30+01:00"),
        ("2026-03-29T01:00:00Z", "2026-03-29T03:00+02:00"), ("2026-03-29T01:30:00Z", "2026-03-29T03:30+02:00")]
    for s in change:
        assert datetime.fromisoformat(s["end"].replace("Z", "+00:00")) - \
            datetime.fromisoformat(s["start"].replace("Z", "+00:00")) == timedelta(minutes=30)
    after = zone_slots(client, w, "2026-04-05")
    assert [s["local"][11:] for s in after] == ["01:00+02:00", "01:30+02:00", "02:30+02:00", "03:00+02:00",
                                                "03:30+02:00"]


def test_a_template_wholly_inside_the_gap_offers_nothing_that_day(client, outbox, fixed_clock):
    w = zoned_world(client, outbox, fixed_clock, utc(2026, 3, 16, 6), "Europe/Berlin", "Berlin")
    template(client, w, "sun", "02:00", "02:30")
    assert [s["local"] for s in zone_slots(client, w, "2026-03-22")] == ["2026-03-22T02:00+01:00"]
    assert zone_slots(client, w, "2026-03-29") == []   # never a phantom 01:00 CET slot
    assert [s["local"] for s in zone_slots(client, w, "2026-04-05")] == ["2026-04-05T02:00+02:00"]


def test_berlin_fall_back_through_the_api(client, outbox, fixed_clock):
    w = zoned_world(client, outbox, fixed_clock, utc(2026, 10, 12, 6), "Europe/Berlin", "Berlin", minutes=60)
    template(client, w, "sun", "01:00", "04:00")
    change = zone_slots(client, w, "2026-10-25")
    # four real hours, the first starting on Saturday in UTC but on Sunday in Berlin
    assert [(s["start"], s["local"]) for s in change] == [
        ("2026-10-24T23:00:00Z", "2026-10-25T01:00+02:00"), ("2026-10-25T00:00:00Z", "2026-10-25T02:00+02:00"),
        ("2026-10-25T01:00:00Z", "2026-10-25T02:00+01:00"), ("2026-10-25T02:00:00Z", "2026-10-25T03:00+01:00")]
    assert zone_slots(client, w, "2026-10-24") == []
    assert len(zone_slots(client, w, "2026-10-18")) == len(zone_slots(client, w, "2026-11-01")) == 3
