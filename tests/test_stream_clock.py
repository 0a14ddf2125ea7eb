"""A device's session clock (audio.live.StreamClock): late blocks never move a party's time.

Blocks of 10 ms at 16 kHz; `arrivals` say when the PortAudio callback saw each one. The clock must
give each block the time its samples were captured, whatever the capture thread's or PortAudio's
delays, so the two parties of a call stay on one timeline.
"""

from __future__ import annotations

import pytest

from agent_assist.audio.live import DRIFT_WINDOW_S, MAX_DRIFT_S, StreamClock

RATE = 16_000
BLOCK = 160  # 10 ms


def place(clock: StreamClock, arrivals: list[float], frames: int = BLOCK) -> list[float]:
    return [clock.place(frames, frames / RATE, a) for a in arrivals]


def steady(start: float, n: int, period: float = BLOCK / RATE) -> list[float]:
    return [start + (i + 1) * period for i in range(n)]


def test_blocks_on_time_get_their_capture_time():
    times = place(StreamClock(RATE), steady(2.0, 500))
    assert times[0] == pytest.approx(2.0)
    assert times[-1] == pytest.approx(2.0 + 499 * 0.01)


@pytest.mark.parametrize("stall", [0.6, 2.0, DRIFT_WINDOW_S + 3.0])
def test_a_stall_and_its_burst_keep_the_clock(stall):
    """The callback or the capture thread starved for `stall` seconds: the buffered blocks then arrive
    in a burst. They were captured on time, so their times run on as if nothing happened."""
    on_time = steady(1.0, 300)  # 3 s
    held = int(stall / 0.01)
    burst = [on_time[-1] + stall + i * 1e-4 for i in range(held)]  # all of them at once, in order
    after = steady(on_time[-1] + held * 0.01, 1000)  # back to real time, 10 s
    times = place(StreamClock(RATE), on_time + burst + after)
    expected = [1.0 + i * 0.01 for i in range(len(times))]
    assert max(abs(t - e) for t, e in zip(times, expected, strict=True)) < 1e-6


def test_a_late_first_block_is_corrected_by_the_next_on_time_ones():
    arrivals = steady(1.0, 400)
    arrivals[0] += 0.8  # the stream's first block waited (the first callback is often late)
    arrivals[1:80] = [arrivals[0] + i * 1e-4 for i in range(1, 80)]  # and the next ones came with it
    times = place(StreamClock(RATE), arrivals)
    assert times[-1] == pytest.approx(1.0 + 399 * 0.01, abs=0.02)


@pytest.mark.parametrize("skew", [0.99, 1.01])
def test_a_device_clock_that_drifts_is_followed(skew):
    """A device whose crystal runs 1% slow or fast against the wall clock: the times stay within
    MAX_DRIFT_S (plus what drifts while a slow drift is confirmed) of the wall clock."""
    period = BLOCK / RATE / skew  # real seconds between blocks
    arrivals = steady(0.0, 20_000, period)  # 200 s of audio
    times = place(StreamClock(RATE), arrivals)
    worst = max(abs((a - period) - t) for a, t in zip(arrivals, times, strict=True))
    assert worst <= MAX_DRIFT_S + DRIFT_WINDOW_S * 0.01 + 0.02
    assert abs((arrivals[-1] - period) - times[-1]) <= MAX_DRIFT_S + 0.06


def test_lost_frames_move_time_on_and_a_gap_re_anchors():
    clock = StreamClock(RATE)
    first = place(clock, steady(0.0, 100))
    clock.lost(BLOCK * 50)  # the queue dropped half a second
    (after_loss,) = place(clock, [first[-1] + 0.01 + 0.5 + 0.01])
    assert after_loss == pytest.approx(first[-1] + 0.01 + 0.5)
    clock.reset()  # a pause: nothing was captured for 30 s
    (resumed,) = place(clock, [after_loss + 30.0])
    assert resumed == pytest.approx(after_loss + 30.0 - 0.01)
