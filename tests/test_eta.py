"""The time-left estimate (docs/architecture.md#eta): its maths on any irregular progress,
worked examples, the series of samples kept per watch, and how it reads."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.blocks import time_left
from bot.eta import MAX_SECONDS_LEFT, next_points, seconds_left, shown, shown_minutes
from storage.progress import (
    MAX_POINTS,
    ProgressPoint,
    decode_points,
    encode_points,
    with_point,
)

T0 = 1_767_225_600.0


def series(*samples: tuple[float, int], total: int = 1000) -> tuple[ProgressPoint, ...]:
    """Samples (seconds after T0, done) of one job."""
    return tuple(ProgressPoint(T0 + t, done, total) for t, done in samples)


# -- properties ------------------------------------------------------------------------------


@st.composite
def monotone_progress(draw: st.DrawFn) -> tuple[ProgressPoint, ...]:
    """Irregular polls (a millisecond to a day apart) of a job whose done count never drops
    (it may stall, jump, reach or pass the total)."""
    total = draw(st.integers(min_value=0, max_value=10**15))
    count = draw(st.integers(min_value=0, max_value=MAX_POINTS))
    gaps = draw(st.lists(st.floats(0.001, 86_400.0), min_size=count, max_size=count))
    steps = draw(st.lists(st.integers(0, max(1, total)), min_size=count, max_size=count))
    t, done, points = T0, draw(st.integers(0, total)), []
    for gap, step in zip(gaps, steps, strict=True):
        t += gap
        done += step
        points.append(ProgressPoint(t, done, total))
    return tuple(points)


@settings(max_examples=500, derandomize=True)
@given(monotone_progress())
def test_never_negative_never_above_the_cap(points):
    left = seconds_left(points)
    assert left is None or 0 <= left <= MAX_SECONDS_LEFT


@settings(max_examples=200, derandomize=True)
@given(monotone_progress())
def test_nothing_with_fewer_than_two_points(points):
    assert seconds_left(points[:1]) is None
    assert seconds_left(()) is None


@settings(max_examples=300, derandomize=True)
@given(monotone_progress())
def test_nothing_when_no_unit_was_done_over_the_window(points):
    stalled = tuple(ProgressPoint(p.t, points[0].done, p.total) for p in points) if points else ()
    assert seconds_left(stalled) is None


@settings(max_examples=300, derandomize=True)
@given(monotone_progress(), st.integers(1, 10**6))
def test_nothing_once_done_passes_the_total(points, over):
    past = tuple(ProgressPoint(p.t, p.done + p.total + over, p.total) for p in points)
    assert seconds_left(past) is None


@settings(max_examples=300, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.floats(-1e12, 1e12, allow_nan=False),
            st.integers(-(10**6), 10**15),
            st.integers(-(10**6), 10**15),
        ),
        max_size=MAX_POINTS,
    )
)
def test_any_stored_points_at_all_give_nothing_or_a_sane_value(raw):
    # whatever the column holds (an old bug, a hand edit), the parent shows sense or nothing
    left = seconds_left(tuple(ProgressPoint(t, d, n) for t, d, n in raw))
    assert left is None or 0 <= left <= MAX_SECONDS_LEFT


@settings(max_examples=300, derandomize=True)
@given(
    st.floats(1.0, 10_000.0),
    st.lists(st.floats(0.5, 3_600.0), min_size=1, max_size=MAX_POINTS - 1),
    st.integers(0, 10**9),
)
def test_steady_progress_gives_the_time_left_whatever_the_intervals(rate, gaps, rows_left):
    times = [0.0]
    for gap in gaps:
        times.append(times[-1] + gap)
    done = [int(rate * t) for t in times]  # the vendor counts whole rows
    total = done[-1] + rows_left
    points = tuple(ProgressPoint(T0 + t, d, total) for t, d in zip(times, done, strict=True))
    left, truth = seconds_left(points), rows_left / rate
    if done[-1] < 100:  # a few rows: whole-row counting blurs the rate too much to compare
        return
    if truth > MAX_SECONDS_LEFT * 1.01:
        assert left is None
    elif truth < MAX_SECONDS_LEFT * 0.99:
        assert left == pytest.approx(truth, rel=0.011)


# -- worked examples ---------------------------------------------------------------------------


def test_linear_progress_gives_the_exact_time_left():
    # 100 rows a minute, polled at irregular times; 600 rows left at the last poll
    points = series((0, 100), (30, 150), (90, 250), (100, 266), (180, 400))
    assert seconds_left(points) == pytest.approx(360.0)
    assert time_left(shown(points)) == "~6 min left"


def test_the_rate_is_the_window_average():
    # 300 rows in the first minute, none in the next: 150 a minute, 700 left
    assert seconds_left(series((0, 0), (60, 300), (120, 300))) == pytest.approx(280.0)


def test_two_points_are_enough():
    assert seconds_left(series((0, 0), (10, 10))) == pytest.approx(990.0)


def test_a_stall_over_the_whole_window_hides_it():
    assert seconds_left(series((0, 400), (60, 400), (120, 400))) is None


def test_a_stall_after_progress_slows_it_then_hides_it():
    points: tuple[ProgressPoint, ...] = ()
    for t, done in [(0, 0), (60, 100), (120, 100), (180, 100), (240, 100), (300, 100)]:
        points = with_point(points, ProgressPoint(T0 + t, done, 1000))
    assert seconds_left(points[:2]) == pytest.approx(540.0)
    assert seconds_left(points) == pytest.approx(2700.0)  # 100 rows in 5 min: 900 left
    points = with_point(points, ProgressPoint(T0 + 360, 100, 1000))
    assert seconds_left(points) is None  # the window holds only the stall now


def test_a_finished_count_says_under_a_minute():
    assert seconds_left(series((0, 900), (60, 1000))) == 0.0
    assert time_left(shown(series((0, 900), (60, 1000)))) == "<1 min left"


def test_beyond_a_day_is_not_shown():
    # 1 row in 10 minutes of 1,000: a week away. Too far to believe from two polls.
    assert seconds_left(series((0, 0), (600, 1))) is None
    assert seconds_left(series((0, 0), (86.4, 1))) == pytest.approx(86_313.6)


def test_zero_or_odd_totals_show_nothing():
    assert seconds_left(series((0, 0), (60, 0), total=0)) is None
    assert seconds_left(series((0, 900), (60, 1200))) is None  # done past the total


def test_points_out_of_order_or_of_two_jobs_show_nothing():
    assert seconds_left(series((60, 100), (0, 200))) is None
    assert seconds_left((ProgressPoint(T0, 0, 10), ProgressPoint(T0 + 60, 5, 20))) is None


# -- the series kept per watch -------------------------------------------------------------------


def test_the_series_keeps_the_last_six_samples():
    points: tuple[ProgressPoint, ...] = ()
    for i in range(10):
        points = with_point(points, ProgressPoint(T0 + i, i, 100))
    assert len(points) == MAX_POINTS and [p.done for p in points] == [4, 5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    "new",
    [
        ProgressPoint(T0 + 120, 40, 1000),  # done dropped: the job started over
        ProgressPoint(T0 + 120, 600, 2000),  # another total: the old rate measured another job
        ProgressPoint(T0 + 60, 600, 1000),  # not after the last sample: clocks disagree
    ],
    ids=["done-dropped", "total-changed", "time-not-after"],
)
def test_a_sample_that_cant_continue_the_series_starts_a_new_one(new):
    before = series((0, 100), (60, 500))
    assert with_point(before, new) == (new,)
    assert seconds_left(with_point(before, new)) is None


def test_next_points_drops_the_series_when_the_job_ends_or_counts_vanish():
    stored = encode_points(series((0, 100), (60, 200)))
    grown = decode_points(next_points(stored, 300, 1000, T0 + 120, finished=False))
    assert [p.done for p in grown] == [100, 200, 300]
    assert next_points(stored, 1000, 1000, T0 + 120, finished=True) is None
    assert next_points(stored, None, None, T0 + 120, finished=False) is None


def test_points_round_trip_through_the_column():
    points = series((0.25, 1), (60.5, 2))
    assert decode_points(encode_points(points)) == points
    assert encode_points(()) is None


@pytest.mark.parametrize(
    "text",
    [None, "", "not json", "{}", "[[1, 2]]", '[[1, "2", 3]]', "[[1, true, 3]]", "[[1e999, 1, 2]]"],
)
def test_an_unreadable_column_reads_as_no_points(text):
    assert decode_points(text) == ()


# -- how it reads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown_as"),
    [
        (0, "<1 min left"),
        (59.9, "<1 min left"),
        (60, "~1 min left"),
        (4 * 60 + 20, "~4 min left"),
        (4 * 60 + 31, "~5 min left"),
        (59 * 60 + 29, "~59 min left"),
        (59 * 60 + 31, "~1 h left"),
        (2 * 3600 + 9 * 60, "~2 h 10 min left"),
        (2 * 3600 + 14 * 60, "~2 h 10 min left"),
        (2 * 3600 + 56 * 60, "~3 h left"),
        (MAX_SECONDS_LEFT, "~24 h left"),
    ],
)
def test_rounded_as_people_say_it(seconds, shown_as):
    assert time_left(shown_minutes(seconds)) == shown_as


def test_counts_beyond_any_float_show_nothing():
    assert seconds_left(series((0, 0), (60, 1), total=10**400)) is None
    assert decode_points(f"[[1, 0, {10**16}], [2, 1, {10**16}]]") == ()
