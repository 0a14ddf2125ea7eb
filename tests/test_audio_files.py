"""Decoding recorded calls: formats, rates, channel layouts, and every kind of bad file."""

import itertools
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from agent_assist.audio.files import ChannelLayout, FileSource, probe_file
from agent_assist.errors import AudioSourceError
from agent_assist.events import Speaker
from tests.conftest import SPEECH


def write_audio(path: Path, audio: np.ndarray, rate: int, codec: str, fmt: str) -> Path:
    """Encode `audio` (channels, n) float32 with PyAV."""
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[audio.shape[0]]
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        sample_fmt = stream.codec_context.codec.audio_formats[0].name
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, dtype=np.float32),
                                           format="fltp", layout=layout)
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=rate)
        frames = resampler.resample(frame) + resampler.resample(None)
        for f in frames:
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def decode_all(source: FileSource) -> dict[Speaker, np.ndarray]:
    out: dict[Speaker, list[np.ndarray]] = {}
    for block in source.blocks():
        for chunk in block:
            out.setdefault(chunk.speaker, []).append(chunk.samples)
    return {k: np.concatenate(v) for k, v in out.items()}


def tone(rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(("codec", "fmt", "suffix"), [
    ("pcm_s16le", "wav", "wav"), ("flac", "flac", "flac"), ("libmp3lame", "mp3", "mp3"),
    ("libopus", "ogg", "ogg"),
])
@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_formats_and_rates_become_16khz_at_the_right_length(tmp_path, codec, fmt, suffix, rate):
    if codec == "libopus" and rate == 22050:
        pytest.skip("Opus does not encode at 22.05 kHz")
    path = write_audio(tmp_path / f"a.{suffix}", tone(rate, 2.0)[None, :], rate, codec, fmt)
    source = FileSource(path)
    audio = decode_all(source)[Speaker.UNKNOWN]
    # encoders add priming/padding; the call length stays within 80 ms of the truth
    assert abs(len(audio) / 16000 - 2.0) < 0.08
    assert source.duration == pytest.approx(len(audio) / 16000)
    spectrum = np.abs(np.fft.rfft(audio[4000:20000]))
    assert np.argmax(spectrum) * 16000 / 16000 == pytest.approx(440, abs=3)


def test_stereo_gives_one_party_per_channel_left_customer_by_default(tmp_path):
    left, right = tone(16000, 1.0, 300), tone(16000, 1.0, 1000)
    path = write_audio(tmp_path / "s.flac", np.stack([left, right]), 16000, "flac", "flac")
    source = FileSource(path)
    assert source.channels == {"left": Speaker.CUSTOMER, "right": Speaker.AGENT}
    audio = decode_all(source)
    assert np.allclose(audio[Speaker.CUSTOMER], left, atol=1e-3)
    assert np.allclose(audio[Speaker.AGENT], right, atol=1e-3)
    swapped = FileSource(path, customer_channel="right")
    assert swapped.channels == {"right": Speaker.CUSTOMER, "left": Speaker.AGENT}
    assert np.allclose(decode_all(swapped)[Speaker.CUSTOMER], right, atol=1e-3)


def test_dual_mono_stereo_is_one_speaker_unless_stereo_is_forced():
    jfk = SPEECH / "jfk.flac"  # 44.1 kHz stereo, the same voice on both channels
    assert probe_file(jfk).channels == 2
    assert FileSource(jfk).channels == {"mono": Speaker.UNKNOWN}
    assert set(FileSource(jfk, layout=ChannelLayout.STEREO).channels.values()) == {
        Speaker.CUSTOMER, Speaker.AGENT}
    assert FileSource(SPEECH / "stereo_diarization.wav").channels["left"] == Speaker.CUSTOMER


def test_blocks_carry_call_time_from_samples():
    source = FileSource(SPEECH / "1089-134691-0000.flac")
    times = [block[0].t for block in source.blocks()]
    assert times[:3] == [0.0, 0.1, 0.2]
    assert np.allclose(np.diff(times), 0.1)


def expect_error(path: Path, *phrases: str) -> None:
    with pytest.raises(AudioSourceError) as info:
        FileSource(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for phrase in phrases:
        assert phrase in message


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.wav", "no such file")


def test_directory(tmp_path):
    expect_error(tmp_path, "is a directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    expect_error(path, "empty")


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("customer said hello\n" * 50)
    expect_error(path, "not a readable audio file")


def test_zero_length_audio(tmp_path):
    path = tmp_path / "zero.wav"
    with wave.open(str(path), "wb") as w:  # a valid header with no samples after it
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    expect_error(path, "no audio samples")


def test_six_channels_are_refused(tmp_path):
    path = write_audio(tmp_path / "surround.wav", np.stack([tone(16000, 0.5)] * 6), 16000,
                       "pcm_s16le", "wav")
    expect_error(path, "6 audio channels")


def test_sample_rate_below_8khz_is_refused(tmp_path):
    path = write_audio(tmp_path / "low.wav", tone(4000, 1.0)[None, :], 4000, "pcm_s16le", "wav")
    expect_error(path, "4000 Hz")


@pytest.mark.parametrize("suffix", ["wav", "flac"])
def test_truncated_file_yields_what_it_has_then_fails(tmp_path, suffix):
    codec = {"wav": "pcm_s16le", "flac": "flac"}[suffix]
    whole = write_audio(tmp_path / f"whole.{suffix}", tone(16000, 4.0)[None, :], 16000, codec,
                        suffix)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    source = FileSource(cut)
    heard = []
    with pytest.raises(AudioSourceError) as info:
        for block in source.blocks():
            heard.append(block[0].samples)
    assert "truncated" in str(info.value)
    assert 1.0 < sum(len(h) for h in heard) / 16000 < 3.0  # the first half was delivered


def pcm_wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    """(channels, n) float audio as a 16-bit PCM WAV, written with the standard library."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(audio.shape[0])
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((np.clip(audio.T, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_a_complete_streaming_wav_whose_sizes_were_never_filled_in_is_read_in_full(tmp_path):
    """ffmpeg writing to a pipe leaves the RIFF and data sizes at 0xFFFFFFFF: the header promises
    nothing, so the file is not 'truncated' against it."""
    path = pcm_wav(tmp_path / "piped.wav", np.stack([tone(16000, 3.0), tone(16000, 3.0, 220.0)]))
    data = bytearray(path.read_bytes())
    data[4:8] = (0xFFFFFFFF).to_bytes(4, "little")
    at = data.index(b"data")
    data[at + 4:at + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    source = FileSource(path)
    audio = decode_all(source)
    assert abs(len(audio[Speaker.CUSTOMER]) / 16000 - 3.0) < 0.02


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_damage_in_the_first_30_s_of_a_stereo_file_still_gives_what_came_before_it(tmp_path, damage):
    """The dual-mono check reads the first 30 s before the call starts; damage there used to refuse
    the whole call with nothing written."""
    rng = np.random.default_rng(0)
    audio = np.stack([tone(16000, 8.0), 0.2 * rng.standard_normal(8 * 16000).astype(np.float32)])
    whole = write_audio(tmp_path / "whole.flac", audio, 16000, "flac", "flac")
    data = bytearray(whole.read_bytes())
    if damage == "cut":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2:] = rng.integers(0, 256, len(data) - len(data) // 2, dtype=np.uint8).tobytes()
    broken = tmp_path / "broken.flac"
    broken.write_bytes(bytes(data))
    source = FileSource(broken)  # not refused up front
    assert source.stereo
    heard = []
    try:
        for block in source.blocks():
            heard.append(block[0].samples)
    except AudioSourceError as exc:
        assert str(broken) in str(exc)
    assert sum(len(h) for h in heard) / 16000 > 2.0  # what came before the damage was delivered


def test_samples_that_are_not_numbers_become_silence_and_are_counted(tmp_path, caplog):
    audio = np.stack([tone(16000, 2.0)])
    audio[0, 16000:16160] = np.nan  # 10 ms
    audio[0, 20000:20080] = np.inf
    path = write_audio(tmp_path / "nan.wav", audio, 16000, "pcm_f32le", "wav")
    source = FileSource(path)
    out = decode_all(source)[Speaker.UNKNOWN]
    assert np.isfinite(out).all() and abs(len(out) / 16000 - 2.0) < 0.01
    assert source.damaged_s == pytest.approx(0.015, abs=0.002)
    assert "not numbers" in caplog.text


def test_ten_ms_of_nan_in_a_pause_loses_no_speech(tmp_path, run_replay):
    """NaN in the pause before a turn (inside its pre-roll) used to reach Whisper with the turn's
    audio, and the turn was lost, with exit 0."""
    speech = decode_all(FileSource(SPEECH / "jfk.flac"))[Speaker.UNKNOWN]
    clean = write_audio(tmp_path / "clean.wav", speech[None, :], 16000, "pcm_f32le", "wav")
    before = run_replay(clean).utterances
    gaps = [(a.end, b.start) for a, b in itertools.pairwise(before) if b.start - a.end > 0.3]
    assert gaps, [u.text for u in before]
    audio = decode_all(FileSource(clean))[Speaker.UNKNOWN]
    before_turn = int((gaps[0][1] - 0.15) * 16000)
    audio[before_turn:before_turn + 160] = np.nan
    damaged = write_audio(tmp_path / "nan.wav", audio[None, :], 16000, "pcm_f32le", "wav")
    replayed = run_replay(damaged)
    assert [u.text for u in replayed.utterances] == [u.text for u in before]
    assert replayed.events[-1].damaged_s == 0.01  # and the call's end says so


# -- damaged headers: each says what is wrong, none is read as noise ----------------------------------

def riff(tag: int = 1, channels: int = 1, rate: int = 16000, bits: int = 16, block: int | None = None,
         data: bytes | None = None, extra: bytes = b"") -> bytes:
    """A RIFF/WAVE file written field by field, so any field can be wrong."""
    samples = (tone(rate or 16000, 0.5) * 32767).astype("<i2")
    data = samples.tobytes() if data is None else data
    block = channels * ((bits + 7) // 8) if block is None else block
    fmt = (tag.to_bytes(2, "little") + channels.to_bytes(2, "little") + rate.to_bytes(4, "little")
           + ((rate * block) & 0xFFFFFFFF).to_bytes(4, "little") + block.to_bytes(2, "little")
           + bits.to_bytes(2, "little") + extra)
    body = (b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data"
            + len(data).to_bytes(4, "little") + data)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def extensible(sub: int, bits: int, container: int) -> bytes:
    guid_tail = bytes.fromhex("000000001000800000aa00389b71")
    ext = ((22).to_bytes(2, "little") + bits.to_bytes(2, "little") + (4).to_bytes(4, "little")
           + sub.to_bytes(2, "little") + guid_tail)
    return riff(tag=0xFFFE, bits=bits, block=container // 8, extra=ext)


@pytest.mark.parametrize(("damaged", "says"), [
    (riff(tag=0), "format tag 0"),
    (riff(bits=0), "0 bits per sample"),
    (riff(bits=12, block=1), "blocks of 1 bytes"),  # 12 bits claimed in a 1-byte block
    (riff(bits=64), "64 bits per sample"),  # integer PCM stops at 32 bits
    (riff(tag=3, bits=16), "16 bits per sample"),  # IEEE float is 32 or 64
    (riff(block=3), "blocks of 3 bytes"),
    (riff(channels=0), "0 channels"),
    (riff(rate=0), "sample rate of 0 Hz"),
    (riff(tag=0xFFFE), "extensible format chunk too short"),
    (extensible(sub=2, bits=16, container=16), "sub-format 2"),
    (riff()[:30], "ends inside its format chunk"),
])
def test_a_damaged_wav_header_is_refused_saying_what_is_wrong(tmp_path, damaged, says):
    path = tmp_path / "damaged.wav"
    path.write_bytes(damaged)
    with pytest.raises(AudioSourceError, match="damaged WAV header: .*" + says):
        FileSource(path)


@pytest.mark.parametrize("tag", [999, 0x1234])
def test_a_format_ffmpeg_cannot_decode_is_one_line(tmp_path, tag):
    path = tmp_path / "odd.wav"
    path.write_bytes(riff(tag=tag))
    with pytest.raises(AudioSourceError, match=r"not one FFmpeg can decode|not a readable audio file"):
        FileSource(path)


@pytest.mark.parametrize("good", [
    riff(bits=12, block=2),  # 12-bit samples in 16-bit containers, as the format allows
    extensible(sub=1, bits=16, container=16),
    riff(tag=3, bits=32, data=(tone(16000, 0.5)).astype("<f4").tobytes()),
])
def test_unusual_but_valid_wav_headers_are_read(tmp_path, good):
    path = tmp_path / "good.wav"
    path.write_bytes(good)
    audio = decode_all(FileSource(path))[Speaker.UNKNOWN]
    assert len(audio) == 8000 and np.abs(audio).max() > 0.2


def test_a_file_of_nothing_but_nan_is_refused_after_saying_so(tmp_path):
    path = tmp_path / "nan.wav"
    path.write_bytes(riff(tag=3, bits=32, data=np.full(16000, np.nan, "<f4").tobytes()))
    source = FileSource(path)
    with pytest.raises(AudioSourceError, match="no sample in it is a number"):
        decode_all(source)
    assert source.damaged_s == pytest.approx(1.0)


def test_a_pipe_or_an_impossible_name_is_one_line_not_a_hang(tmp_path):
    import os

    fifo = tmp_path / "call.wav"
    os.mkfifo(fifo)  # nobody writes to it: opening it to read would wait for ever
    with pytest.raises(AudioSourceError, match="not a regular file"):
        FileSource(fifo)
    with pytest.raises(AudioSourceError, match="cannot be read"):
        FileSource(tmp_path / ("x" * 300 + ".wav"))  # longer than any file name may be
