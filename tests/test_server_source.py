"""A served call's audio: μ-law and L16 decoded as FFmpeg decodes them, the call's clock, pauses, the end."""

from __future__ import annotations

import io
import threading

import av
import numpy as np
import pytest

from agent_assist.audio.telephone import mulaw_wav
from agent_assist.errors import AgentAssistError
from agent_assist.events import AudioChunk, AudioDropped, EndReason, Listening, Speaker
from agent_assist.server import source as source_module
from agent_assist.server.protocol import Media
from agent_assist.server.source import StreamSource, decode

STEREO = Media("PCMU", ("external", "internal"))


def tone(seconds: float, hz: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_mulaw_is_decoded_as_ffmpeg_decodes_it():
    wav = mulaw_wav(np.stack([tone(0.5, 440), tone(0.5, 700)]))
    with av.open(io.BytesIO(wav)) as container:
        ffmpeg = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    with av.open(io.BytesIO(wav)) as container:
        payload = b"".join(bytes(p) for p in container.demux(audio=0))
    ours = decode(payload, STEREO)
    assert ours.shape == (2, 4000)
    assert ffmpeg.dtype == np.int16 and ffmpeg.shape == (1, 8000)  # FFmpeg: 16-bit, interleaved
    ffmpeg_planar = ffmpeg.reshape(-1, 2).T / 32768.0
    assert np.abs(ours - ffmpeg_planar).max() < 1e-6
    # external (the customer) first: its 440 Hz tone is the first channel's
    assert np.argmax(np.abs(np.fft.rfft(ours[0]))) == pytest.approx(440 * 4000 / 8000, abs=2)


def test_l16_is_big_endian():
    samples = np.array([0, 16384, -16384, 32767], dtype=">i2").tobytes()
    assert decode(samples, Media("L16", ("external",))).tolist() == [[0.0, 0.5, -0.5, 32767 / 32768]]


def collect(source: StreamSource) -> list:
    out = []
    for block in source.blocks():
        out.extend(block)
    return out


def frames(seconds: float, hz: float = 440) -> list[bytes]:
    wav = mulaw_wav(np.stack([tone(seconds, hz), tone(seconds, hz * 1.5)]))
    with av.open(io.BytesIO(wav)) as container:
        data = b"".join(bytes(p) for p in container.demux(audio=0))
    return [data[i:i + 320] for i in range(0, len(data), 320)]  # 20 ms frames


def test_the_call_clock_follows_the_samples_and_jumps_over_a_pause():
    source = StreamSource("call-1", STEREO, "test", conversation_id="conv", participant_id="part")
    t = 0.0
    for frame in frames(1.0):
        source.put_audio(t, frame)
        t += 0.02
    source.put_pause(1.0, True)
    source.put_pause(4.0, False)
    for frame in frames(0.5):
        source.put_audio(t + 3.0, frame)
        t += 0.02
    source.end(EndReason.ENDED)
    events = collect(source)
    chunks = [e for e in events if isinstance(e, AudioChunk)]
    pauses = [e for e in events if isinstance(e, Listening)]
    assert {c.speaker for c in chunks} == {Speaker.CUSTOMER, Speaker.AGENT}
    assert [(p.t, p.paused, p.by) for p in pauses] == [(1.0, True, "platform"), (4.0, False, "platform")]
    after = [c for c in chunks if c.t >= 3.9]
    assert after and after[0].t == pytest.approx(4.0)  # the gap is call time with no audio
    heard = sum(len(c.samples) for c in chunks if c.speaker == Speaker.CUSTOMER) / 16000
    assert heard == pytest.approx(1.5, abs=0.01)  # resampled to 16 kHz, nothing lost
    assert source.end_reason == EndReason.ENDED and source.duration == pytest.approx(4.5, abs=0.02)


def test_a_protocol_error_ends_the_source_with_its_message():
    source = StreamSource("call-1", STEREO, "test")
    source.end(EndReason.SOURCE_ERROR, "seq 5 out of order (expected 2)")
    with pytest.raises(AgentAssistError, match="seq 5 out of order"):
        collect(source)


def test_a_thread_far_behind_drops_audio_counted_and_the_end_still_gets_in(monkeypatch):
    monkeypatch.setattr(source_module, "MAX_QUEUED_FRAMES", 3)
    source = StreamSource("call-1", STEREO, "test")
    for i, frame in enumerate(frames(0.2)):  # 10 frames, room for 3
        source.put_audio(i * 0.02, frame)
    source.end(EndReason.DISCONNECTED)
    assert source.dropped_frames == 7
    events = collect(source)
    (dropped,) = [e for e in events if isinstance(e, AudioDropped)]
    assert dropped.seconds == pytest.approx(0.14)
    assert source.end_reason == EndReason.DISCONNECTED


def test_blocks_wait_for_audio_without_polling_the_loop():
    source = StreamSource("call-1", STEREO, "test")
    got = threading.Event()

    def run() -> None:
        for block in source.blocks():
            if any(isinstance(e, AudioChunk) for e in block):
                got.set()

    thread = threading.Thread(target=run)
    thread.start()
    source.put_audio(0.0, frames(0.1)[0])
    assert got.wait(5)
    source.end(EndReason.ENDED)
    thread.join(5)
    assert not thread.is_alive()
