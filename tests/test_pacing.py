"""Adaptive pacing: after a 429 the shared schedule settles just under the rate that met
it, once per burst, and a rate someone chose is never changed."""

from __future__ import annotations

import pytest

from sendoso._pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _issue(pacer: Pacer, clock: FakeClock, count: int, every: float) -> None:
    for _ in range(count):
        clock.now += pacer.reserve() + every


def test_a_429_lowers_an_unpaced_schedule_to_just_under_the_measured_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(None, adaptive=True, clock=clock)
    _issue(pacer, clock, 101, every=0.01)  # 100 requests/s

    pacer.throttled(1.0)

    assert pacer.rate == pytest.approx(95.0, rel=0.02)


def test_the_many_429s_of_one_burst_lower_the_rate_once() -> None:
    clock = FakeClock()
    pacer = Pacer(None, adaptive=True, clock=clock)
    _issue(pacer, clock, 101, every=0.01)

    for _ in range(16):
        pacer.throttled(1.0)

    assert pacer.rate == pytest.approx(95.0, rel=0.02)


def test_each_later_429_lowers_it_again_below_the_rate_in_force() -> None:
    clock = FakeClock()
    pacer = Pacer(50.0, adaptive=True, clock=clock)
    _issue(pacer, clock, 60, every=0.0)  # as fast as the schedule allows: 50/s
    pacer.throttled(0.5)
    first = pacer.rate
    clock.now += 1.0
    _issue(pacer, clock, 60, every=0.0)
    pacer.throttled(0.5)

    assert first == pytest.approx(47.5, rel=0.02)
    assert pacer.rate == pytest.approx(first * 0.95, rel=0.02)


def test_a_chosen_rate_is_held_and_only_paused() -> None:
    clock = FakeClock()
    pacer = Pacer(20.0, clock=clock)
    _issue(pacer, clock, 40, every=0.0)

    pacer.throttled(2.0)

    assert pacer.rate == 20.0
    assert pacer.reserve() >= 2.0


def test_too_few_requests_to_measure_leave_the_rate_alone() -> None:
    clock = FakeClock()
    pacer = Pacer(None, adaptive=True, clock=clock)
    pacer.reserve()

    pacer.throttled(1.0)

    assert pacer.rate is None
