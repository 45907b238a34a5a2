"""The scheduling engine: window edges, DST in Europe/Stockholm, late and missed stages."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.followup.helpers import PROGRAMMES
from utfall.followup import Completed, Enrolment, add_months, local_today, schedule, stage_status

VIP = PROGRAMMES.get("vip-beroende")
LARO = PROGRAMMES.get("laro")
UTC = dt.UTC
D = dt.date


def by_id(items: list) -> dict:  # type: ignore[type-arg]
    return {s.stage_id: s for s in items}


def vip(today: dt.date | dt.datetime, start: dt.date = D(2024, 1, 15),
        end: dt.date | None = None, done: list[tuple[str, dt.date]] | None = None) -> dict:  # type: ignore[type-arg]
    return by_id(schedule(Enrolment(VIP, start, end), done or [], today))


class TestWindowEdges:
    """vip-beroende month-6: due 2024-07-15, window 07-01…07-29, grace 2 months."""

    def test_dates(self) -> None:
        stage = vip(D(2024, 1, 15))["month-6"]
        assert (stage.due_date, stage.window_start, stage.window_end, stage.overdue_until) == (
            D(2024, 7, 15), D(2024, 7, 1), D(2024, 7, 29), D(2024, 9, 29))
        assert (stage.responsible, stage.method) == ("region_unit", "self_report")
        assert stage.instruments == ["audit-c", "dudit", "who-5", "life-situation"]

    @pytest.mark.parametrize(
        ("today", "status"),
        [(D(2024, 6, 30), "upcoming"), (D(2024, 7, 1), "due"), (D(2024, 7, 15), "due"),
         (D(2024, 7, 29), "due"), (D(2024, 7, 30), "overdue"), (D(2024, 9, 29), "overdue"),
         (D(2024, 9, 30), "missed")],
    )
    def test_status_not_done(self, today: dt.date, status: str) -> None:
        assert vip(today)["month-6"].status == status

    @pytest.mark.parametrize(
        ("done_on", "status"),
        [(D(2024, 6, 30), "done_early"), (D(2024, 7, 1), "done_in_window"),
         (D(2024, 7, 29), "done_in_window"), (D(2024, 7, 30), "done_late"),
         (D(2024, 11, 1), "done_late")],
    )
    def test_status_done(self, done_on: dt.date, status: str) -> None:
        stage = vip(D(2025, 1, 1), done=[("month-6", done_on)])["month-6"]
        assert (stage.status, stage.completed_on) == (status, done_on)

    def test_in_window_completion_wins_over_late_one(self) -> None:
        done = [("month-6", D(2024, 8, 15)), ("month-6", D(2024, 7, 20))]
        assert vip(D(2025, 1, 1), done=done)["month-6"].completed_on == D(2024, 7, 20)

    def test_intake_window_starts_on_start_date(self) -> None:
        stage = vip(D(2024, 1, 15))["intake"]
        assert (stage.window_start, stage.window_end, stage.status) == (
            D(2024, 1, 15), D(2024, 2, 14), "due")
        assert vip(D(2024, 1, 14))["intake"].status == "upcoming"


class TestCalendarMonths:
    def test_add_months_clamps(self) -> None:
        assert add_months(D(2024, 1, 31), 1) == D(2024, 2, 29)
        assert add_months(D(2023, 1, 31), 1) == D(2023, 2, 28)
        assert add_months(D(2024, 8, 31), 6) == D(2025, 2, 28)
        assert add_months(D(2024, 3, 31), -1) == D(2024, 2, 29)
        assert add_months(D(2024, 12, 15), 1) == D(2025, 1, 15)

    def test_month_offsets_clamp_at_month_end(self) -> None:
        stages = vip(D(2023, 9, 1), start=D(2023, 8, 31))
        assert stages["month-6"].due_date == D(2024, 2, 29)
        assert stages["month-12"].due_date == D(2024, 8, 31)

    def test_repeats_do_not_drift(self) -> None:
        stages = by_id(schedule(Enrolment(LARO, D(2023, 8, 31)), [], D(2025, 3, 1)))
        assert [stages[f"review-{k}"].due_date for k in (1, 2, 3, 4)] == [
            D(2024, 2, 29), D(2024, 8, 31), D(2025, 2, 28), D(2025, 8, 31)]

    @given(start=st.dates(D(2000, 1, 1), D(2090, 12, 31)), months=st.integers(-60, 60))
    @settings(max_examples=100, deadline=None)
    def test_add_months_properties(self, start: dt.date, months: int) -> None:
        result = add_months(start, months)
        assert (result.year * 12 + result.month) - (start.year * 12 + start.month) == months
        assert result.day <= start.day
        assert result.day == start.day or (result + dt.timedelta(days=1)).day == 1


class TestDaylightSaving:
    """Europe/Stockholm: CET→CEST on 2024-03-31 02:00, CEST→CET on 2024-10-27 03:00."""

    def test_local_today_across_spring_change(self) -> None:
        assert local_today(dt.datetime(2024, 3, 30, 22, 59, tzinfo=UTC)) == D(2024, 3, 30)
        assert local_today(dt.datetime(2024, 3, 30, 23, 0, tzinfo=UTC)) == D(2024, 3, 31)
        # after the change, local midnight is 22:00 UTC
        assert local_today(dt.datetime(2024, 3, 31, 21, 59, tzinfo=UTC)) == D(2024, 3, 31)
        assert local_today(dt.datetime(2024, 3, 31, 22, 0, tzinfo=UTC)) == D(2024, 4, 1)

    def test_local_today_across_autumn_change(self) -> None:
        assert local_today(dt.datetime(2024, 10, 26, 21, 59, tzinfo=UTC)) == D(2024, 10, 26)
        assert local_today(dt.datetime(2024, 10, 26, 22, 0, tzinfo=UTC)) == D(2024, 10, 27)
        assert local_today(dt.datetime(2024, 10, 27, 22, 59, tzinfo=UTC)) == D(2024, 10, 27)
        assert local_today(dt.datetime(2024, 10, 27, 23, 0, tzinfo=UTC)) == D(2024, 10, 28)

    def test_window_ending_on_spring_change_day(self) -> None:
        # intake window: 2024-03-01 … 2024-03-31 (30 days after start), inclusive
        start = D(2024, 3, 1)
        last_minute = dt.datetime(2024, 3, 31, 21, 59, tzinfo=UTC)  # 23:59 CEST
        first_minute = dt.datetime(2024, 3, 31, 22, 0, tzinfo=UTC)  # 00:00 CEST on 1 April
        assert vip(last_minute, start=start)["intake"].window_end == D(2024, 3, 31)
        assert vip(last_minute, start=start)["intake"].status == "due"
        assert vip(first_minute, start=start)["intake"].status == "overdue"

    def test_window_ending_on_autumn_change_day(self) -> None:
        start = D(2024, 9, 27)  # intake window ends 2024-10-27
        assert vip(dt.datetime(2024, 10, 27, 22, 59, tzinfo=UTC), start=start)[
            "intake"].status == "due"  # 23:59 CET
        assert vip(dt.datetime(2024, 10, 27, 23, 0, tzinfo=UTC), start=start)[
            "intake"].status == "overdue"

    def test_same_instant_in_another_zone(self) -> None:
        instant = dt.datetime(2024, 3, 31, 17, 30, tzinfo=ZoneInfo("America/New_York"))
        # 21:30 UTC = 23:30 CEST, still 31 March in Stockholm
        assert vip(instant, start=D(2024, 3, 1))["intake"].status == "due"

    def test_naive_datetime_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone"):
            vip(dt.datetime(2024, 3, 31, 12, 0))

    def test_window_spanning_dst_counts_calendar_days(self) -> None:
        # month-6 of a start on 2023-10-15: due 2024-04-15; window 04-01…04-29 spans no
        # DST change, but the 30-day intake window of 2024-03-20 spans 31 March.
        stage = vip(D(2024, 4, 19), start=D(2024, 3, 20))["intake"]
        assert (stage.window_end, stage.status) == (D(2024, 4, 19), "due")


class TestDischargeAndLater:
    def test_discharge_unknown_while_enrolled(self) -> None:
        stages = vip(D(2024, 3, 1))
        assert stages["discharge"].status == "upcoming"
        assert stages["discharge"].due_date is None
        assert stages["post-discharge-6"].due_date is None

    def test_post_discharge_anchored_on_discharge_assessment(self) -> None:
        end = D(2024, 5, 1)
        on_time = vip(D(2024, 6, 1), end=end)
        assert on_time["post-discharge-6"].due_date == D(2024, 11, 1)
        late = vip(D(2024, 6, 1), end=end, done=[("discharge", D(2024, 5, 10))])
        assert late["discharge"].status == "done_in_window"
        assert late["post-discharge-6"].due_date == D(2024, 11, 10)
        assert late["post-discharge-6"].responsible == "municipal_social_services"
        assert late["post-discharge-6"].method == "social_worker_interview"

    def test_missed_discharge(self) -> None:
        stages = vip(D(2024, 7, 1), end=D(2024, 5, 1))
        # window 04-17…05-15, grace 1 month → overdue until 06-15, then missed
        assert stages["discharge"].overdue_until == D(2024, 6, 15)
        assert stages["discharge"].status == "missed"

    def test_in_treatment_stage_dropped_after_early_discharge(self) -> None:
        stages = vip(D(2024, 12, 1), end=D(2024, 4, 1))
        assert "month-6" not in stages
        assert "month-12" in stages  # the 12-month follow-up applies after discharge too

    def test_stage_due_on_end_date_is_kept(self) -> None:
        assert "month-6" in vip(D(2024, 12, 1), end=D(2024, 7, 15))


class TestRepeatedStages:
    def test_listed_up_to_first_upcoming(self) -> None:
        done = [Completed("intake", D(2024, 1, 20)), Completed("review-1", D(2024, 7, 10))]
        stages = schedule(Enrolment(LARO, D(2024, 1, 15)), done, D(2025, 3, 1))
        assert [(s.stage_id, s.status) for s in stages] == [
            ("intake", "done_in_window"), ("review-1", "done_in_window"),
            ("review-2", "overdue"), ("review-3", "upcoming"), ("discharge", "upcoming"),
            ("post-discharge-6", "upcoming")]
        assert [s.occurrence for s in stages if s.stage == "review"] == [1, 2, 3]

    def test_stop_at_end(self) -> None:
        stages = schedule(Enrolment(LARO, D(2024, 1, 15), D(2025, 2, 1)), [], D(2026, 1, 1))
        assert [s.stage_id for s in stages] == ["intake", "review-1", "review-2", "discharge",
                                                "post-discharge-6"]
        assert {s.status for s in stages} == {"missed"}

    def test_later_completion_kept(self) -> None:
        stages = stage_status(LARO, D(2024, 1, 15), None, [("review-3", D(2025, 7, 20))],
                              D(2024, 3, 1))
        ids = [s.stage_id for s in stages]
        assert ids[:4] == ["intake", "review-1", "review-2", "review-3"]


@given(start=st.dates(D(2020, 1, 1), D(2030, 12, 31)), offset=st.integers(0, 900))
@settings(max_examples=80, deadline=None)
def test_status_matches_window(start: dt.date, offset: int) -> None:
    today = start + dt.timedelta(days=offset)
    for stage in schedule(Enrolment(VIP, start), [], today):
        if stage.due_date is None:
            assert stage.status == "upcoming"
            continue
        assert stage.window_start <= stage.due_date <= stage.window_end  # type: ignore[operator]
        expected = ("upcoming" if today < stage.window_start  # type: ignore[operator]
                    else "due" if today <= stage.window_end  # type: ignore[operator]
                    else "overdue" if today <= stage.overdue_until  # type: ignore[operator]
                    else "missed")
        assert stage.status == expected


def test_programme_by_id() -> None:
    stages = stage_status("vip-beroende", D(2024, 1, 15), None, [], D(2024, 1, 20))
    assert stages[0].stage_id == "intake" and stages[0].status == "due"
