"""The sandbox's virtual clock: how fast it runs (``speed``), kept across a reset."""

from __future__ import annotations

import httpx
import pytest

from sendoso.sandbox import SandboxConfig, SandboxControl, SandboxServer
from sendoso.sandbox._runtime import Clock


class FakeTime:
    """A real-time source that moves only when told, so the clock's arithmetic needs no wait."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_a_clock_at_speed_n_runs_n_times_faster_than_real_time() -> None:
    real = FakeTime()
    clock = Clock(60, time_source=real)
    start = clock.now()
    real.now += 10
    assert clock.now() - start == pytest.approx(600)
    clock.advance(3600)
    assert clock.now() - start == pytest.approx(4200)
    assert clock.snapshot()["speed"] == 60
    assert clock.snapshot()["offset_seconds"] == 3600


def test_a_clock_at_speed_1_is_real_time() -> None:
    real = FakeTime()
    clock = Clock(time_source=real)
    real.now += 5
    assert clock.now() == pytest.approx(real.now)


@pytest.mark.parametrize("speed", [0, -1, float("inf"), float("nan"), 1e9])
def test_nonsense_speeds_are_refused(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        SandboxConfig(speed=speed)


def test_the_served_clock_says_its_speed_and_keeps_it_across_a_reset() -> None:
    with (
        SandboxServer(SandboxConfig(speed=3600, rate_limit=None)) as server,
        SandboxControl(server.url) as control,
    ):
        assert control.clock()["speed"] == 3600
        control.advance(60)
        assert control.clock()["offset_seconds"] == 60
        control.reset()
        after = httpx.get(server.url + "/_sandbox/clock").json()
        assert after["speed"] == 3600
        assert after["offset_seconds"] == 0
