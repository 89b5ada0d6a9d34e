"""Pacing: adaptive rates (after a 429 the shared schedule settles just under the rate that
met it, once per burst, within a floor, recovering slowly; a rate someone chose is never
changed), and slots prebooked under a key."""

from __future__ import annotations

from collections import deque

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
    assert first is not None
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


# --- adaptive: only a real sample is measured, within a floor, recovering slowly --------------


def _saturate(pacer: Pacer, clock: FakeClock, seconds: float) -> None:
    """Callers that always have a request waiting: each one goes out at its slot."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now += pacer.reserve()


def test_two_bookings_are_no_measurement_and_only_pause() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, adaptive=True, clock=clock)
    pacer.reserve()
    clock.now += 1.5
    pacer.reserve()

    pacer.throttled(1.0)

    assert pacer.rate == 10.0
    assert pacer.reserve() == pytest.approx(1.0)


def test_a_429_never_lowers_the_rate_below_the_floor() -> None:
    clock = FakeClock()
    pacer = Pacer(100.0, adaptive=True, clock=clock)
    _issue(pacer, clock, 12, every=0.5)  # slow callers: 2 requests/s

    pacer.throttled(1.0)

    # 0.95 x 2/s would be 1.9/s; the floor is 10 % of the 100/s in force before.
    assert pacer.rate == pytest.approx(10.0)


def test_the_floor_of_a_slow_schedule_is_one_request_a_second() -> None:
    clock = FakeClock()
    pacer = Pacer(5.0, adaptive=True, clock=clock)
    for _ in range(8):
        _issue(pacer, clock, 12, every=0.7)
        pacer.throttled(0.5)
        clock.now += 1.0

    assert pacer.rate == pytest.approx(1.0)


def test_the_rate_recovers_slowly_after_quiet_periods_up_to_just_under_the_429() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, adaptive=True, clock=clock)
    _issue(pacer, clock, 12, every=0.2)  # callers slower than the schedule: 5/s
    pacer.throttled(1.0)  # the pause ends 1 s from now
    assert pacer.rate == pytest.approx(4.75)

    clock.now += 30.5
    pacer.reserve()
    assert pacer.rate == pytest.approx(4.75)  # 29.5 s after the pause: not quiet long enough
    clock.now += 0.5
    pacer.reserve()
    assert pacer.rate == pytest.approx(4.75 * 1.05)  # one step
    clock.now += 29.0
    pacer.reserve()
    assert pacer.rate == pytest.approx(4.75 * 1.05)  # one step per quiet period

    rates: list[float] = []
    for _ in range(40):
        clock.now += 30.0
        pacer.reserve()
        assert pacer.rate is not None
        rates.append(pacer.rate)
    assert rates == sorted(rates)
    assert rates[-1] == pytest.approx(9.5)  # 0.95 x the 10/s that drew the 429, never above


def test_a_429_restarts_the_quiet_period() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, adaptive=True, clock=clock)
    _issue(pacer, clock, 12, every=0.2)
    pacer.throttled(1.0)
    clock.now += 20.0
    pacer.throttled(1.0)  # too few bookings since to measure: only a pause...
    lowered = pacer.rate

    clock.now += 25.0
    pacer.reserve()
    assert pacer.rate == lowered  # ...but the 30 s of quiet start again after it
    clock.now += 10.0
    pacer.reserve()
    assert pacer.rate == pytest.approx(lowered * 1.05)  # type: ignore[operator]


def test_a_run_settles_just_under_the_servers_limit() -> None:
    """Against a server that allows 7 requests in any 1 s, from a guessed 10/s: a few 429s
    early on, then none, at a rate just under 7/s."""
    clock = FakeClock()
    pacer = Pacer(10.0, adaptive=True, clock=clock)
    served: deque[float] = deque()
    throttled_at: list[float] = []
    start = clock.now
    while clock.now < start + 3600:
        clock.now += pacer.reserve()
        while served and served[0] <= clock.now - 1.0:
            served.popleft()
        if len(served) >= 7:
            throttled_at.append(clock.now - start)
            pacer.throttled(1.0)
        else:
            served.append(clock.now)

    assert throttled_at, "the limit was never reached"
    assert max(throttled_at) < 600
    assert len(throttled_at) < 20
    assert 7.0 * 0.9 <= pacer.rate <= 7.0  # type: ignore[operator]


# --- prebooked slots ------------------------------------------------------------------------


def test_a_prebooked_slot_is_used_by_its_reserve_and_no_second_one_is_booked() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    assert pacer.prebook("k1") == 0.0
    assert pacer.prebook("k2") == pytest.approx(0.1)
    clock.now += 0.05

    assert pacer.reserve("k2") == pytest.approx(0.05)  # the rest of its wait
    assert pacer.reserve("k1") == 0.0
    assert pacer.reserve() == pytest.approx(0.15)  # the next caller: one interval after k2


def test_an_unknown_key_books_normally() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    pacer.prebook("k1")

    assert pacer.reserve("other") == pytest.approx(0.1)
    assert pacer.reserve() == pytest.approx(0.2)


def test_a_ticket_is_used_once() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    pacer.prebook("k1")
    assert pacer.reserve("k1") == 0.0

    assert pacer.reserve("k1") == pytest.approx(0.1)  # gone: a fresh slot


def test_a_pause_after_prebooking_holds_the_ticket_back() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    assert pacer.prebook("k1") == 0.0
    pacer.throttled(5.0)  # another caller's 429

    assert pacer.reserve("k1") == pytest.approx(5.0)


def test_a_ticket_outlived_by_its_pause_takes_the_next_free_slot() -> None:
    """Its turn went by during the pause: it queues behind whoever went first."""
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    pacer.prebook("k1")
    pacer.throttled(1.0)
    clock.now += 2.0
    pacer.reserve()  # someone else goes now; the next free slot is 0.1 s away

    assert pacer.reserve("k1") == pytest.approx(0.1)


def test_unused_tickets_do_not_pile_up() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    pacer.prebook("abandoned")
    clock.now += Pacer.TICKET_TTL + 1
    pacer.prebook("fresh")

    # The abandoned ticket was dropped: its key books a fresh slot after "fresh".
    assert pacer.reserve("abandoned") == pytest.approx(0.1)


def test_tickets_are_capped_in_number() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    pacer.prebook("first")
    for n in range(Pacer.MAX_TICKETS):
        pacer.prebook(f"k{n}")
    last = Pacer.MAX_TICKETS * 0.1

    assert pacer.reserve(f"k{Pacer.MAX_TICKETS - 1}") == pytest.approx(last)
    # The oldest ticket was dropped: its key books a fresh slot, at the end of the schedule.
    assert pacer.reserve("first") == pytest.approx(last + 0.1)


def test_a_ticket_whose_turn_passed_long_ago_books_a_fresh_slot() -> None:
    """Workers that waited for their slots, then stalled together (a busy ledger), do not
    all transmit at once when they resume: stale tickets are re-booked, spaced."""
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    for n in range(8):
        pacer.prebook(f"k{n}")
    clock.now += 1.0  # every ticket's slot is now in the past
    waits = [pacer.reserve(f"k{n}") for n in range(8)]
    assert waits == pytest.approx([0.1 * n for n in range(8)], abs=1e-9)
