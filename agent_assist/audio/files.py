"""A recorded call as an audio source: decoded and resampled block by block, like a device.

Any container and codec FFmpeg reads (WAV, FLAC, MP3, OGG/Vorbis/Opus, …) at 8 kHz or more, mono or
stereo. Stereo means one party per channel; a stereo file whose two channels carry the same signal
("dual mono", as many recorders write a single microphone) is detected and treated as mono unless
the caller insists on stereo.
"""

from __future__ import annotations

import logging
import stat
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import av
import numpy as np

from agent_assist.audio.resample import TARGET_RATE, StreamResampler
from agent_assist.errors import AudioSourceError
from agent_assist.events import AudioChunk, EndReason, Speaker

log = logging.getLogger(__name__)

MIN_RATE = 8000
#: How much of a stereo file is inspected to decide whether it is really dual mono.
_DUAL_MONO_SCAN_S = 30.0
_DUAL_MONO_CORRELATION = 0.97
#: A file whose audio ends this much before its header says it should is reported as truncated.
_TRUNCATION_TOLERANCE_S = 0.25


class ChannelLayout(StrEnum):
    """How to map a file's channels to parties."""

    AUTO = "auto"  # stereo = one party per channel, unless both channels carry the same signal
    STEREO = "stereo"  # always one party per channel
    MONO = "mono"  # mix down to one unknown speaker


@dataclass(frozen=True)
class FileInfo:
    path: Path
    codec: str
    rate: int
    channels: int
    duration: float | None  # from the header, when it says


def probe_file(path: Path) -> FileInfo:
    """Open `path` and check it is usable audio, raising `AudioSourceError` with a one-line reason."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AudioSourceError(f"{path}: no such file") from None
    except OSError as exc:  # a name too long, a loop of links, no permission on a folder
        raise AudioSourceError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if stat.S_ISDIR(mode):
        raise AudioSourceError(f"{path}: is a directory, not an audio file")
    if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end
        raise AudioSourceError(f"{path}: is not a regular file (a pipe, socket or device); "
                               "save the audio to a file first")
    if path.stat().st_size == 0:
        raise AudioSourceError(f"{path}: file is empty (0 bytes)")
    problem = _wav_header_problem(path)
    if problem:
        raise AudioSourceError(f"{path}: damaged WAV header: {problem}")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioSourceError(f"{path}: contains no audio stream")
            stream = container.streams.audio[0]
            if stream.codec_context is None:  # FFmpeg found a stream it has no decoder for
                raise AudioSourceError(f"{path}: its audio codec is not one FFmpeg can decode")
            rate = int(stream.codec_context.sample_rate or stream.rate or 0)
            channels = int(stream.codec_context.channels or 0)
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            first = _first_frame(container, stream)
            codec = stream.codec_context.name
            container_format = container.format.name
    except AudioSourceError:
        raise
    except PermissionError:
        raise AudioSourceError(f"{path}: permission denied") from None
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise AudioSourceError(f"{path}: not a readable audio file ({_reason(exc)})") from None
    if first is None:
        raise AudioSourceError(f"{path}: contains no audio samples (zero-length audio)")
    rate = rate or first.sample_rate
    channels = channels or len(first.layout.channels)
    if rate < MIN_RATE:
        raise AudioSourceError(
            f"{path}: sample rate {rate} Hz is too low for speech recognition (need 8 kHz or more)"
        )
    if channels not in (1, 2):
        raise AudioSourceError(
            f"{path}: {channels} audio channels are not supported; use a mono file or a stereo "
            "file with one party per channel"
        )
    declared = _wav_declared_duration(path) if container_format.startswith("wav") else None
    if declared is not None:
        # FFmpeg trims a WAV's duration to the bytes present; the header says what was promised
        duration = max(duration or 0.0, declared)
    return FileInfo(path=path, codec=codec, rate=rate, channels=channels, duration=duration)


#: The sizes a WAV written to a pipe carries (ffmpeg, sox): its length was not known when the
#: header was written, so the header promises nothing.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


#: The sample formats a WAV's `fmt ` chunk may declare, by format tag: the bits per sample allowed.
_WAV_BITS = {1: (8, 16, 24, 32), 3: (32, 64), 6: (8,), 7: (8,)}  # PCM, IEEE float, A-law, μ-law
_WAV_EXTENSIBLE = 0xFFFE
#: The sub-formats an extensible WAV may carry (the first two bytes of its GUID: PCM, float).
_WAV_SUBFORMATS = {1: "PCM", 3: "IEEE float"}


def _wav_header_problem(path: Path) -> str | None:
    """What is wrong with a RIFF/WAVE file's format chunk, or None (also for any other container).

    FFmpeg reads what it can of a damaged header: a format tag of 0, 12 bits in a 1-byte block or
    a block size that does not fit the channels would be decoded as noise or refused with no
    reason. Checking the few fields that say how to read the samples gives the reason instead.
    """
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return None  # probe_file says why
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    at = 12
    while at + 8 <= len(head):
        chunk, size = head[at : at + 4], int.from_bytes(head[at + 4 : at + 8], "little")
        if chunk == b"fmt ":
            fmt = head[at + 8 : at + 8 + min(size, 40)]
            if size < 16:
                return f"its format chunk is {size} bytes, fewer than the 16 it must have"
            if len(fmt) < 16:
                return "the file ends inside its format chunk"
            tag, channels, rate, _byte_rate, block, bits = struct.unpack("<HHIIHH", fmt[:16])
            if channels == 0:
                return "it declares 0 channels"
            if rate == 0:
                return "it declares a sample rate of 0 Hz"
            if tag == _WAV_EXTENSIBLE:
                if len(fmt) < 40:
                    return "an extensible format chunk too short to say its sample format"
                sub = int.from_bytes(fmt[24:26], "little")
                if sub not in _WAV_SUBFORMATS:
                    return f"an extensible format with sub-format {sub}, not PCM or IEEE float"
                container = block * 8 // channels
                if block % channels or container not in _WAV_BITS[sub] or not 0 < bits <= container:
                    return (f"{bits}-bit samples in {block}-byte blocks of {channels} channel(s) "
                            f"are not {_WAV_SUBFORMATS[sub]} this program can read")
                return None
            if tag == 0:
                return "format tag 0 (unknown): the file does not say how its samples are stored"
            allowed = _WAV_BITS.get(tag)
            if allowed is None:
                return None  # a compressed format (ADPCM, GSM, MP3 in WAV, …): FFmpeg decides
            container = (bits + 7) // 8 * 8  # 12-bit samples are stored in 16 bits, 20 in 24
            if bits == 0 or container not in allowed or (tag != 1 and bits != container):
                return (f"{bits} bits per sample; this format stores "
                        + ", ".join(str(b) for b in allowed) + " bits")
            if block != channels * container // 8:
                return (f"blocks of {block} bytes do not hold {channels} channel(s) of {bits}-bit "
                        f"samples ({channels * container // 8} bytes)")
            return None
        at += 8 + size + (size & 1)
    return None


def _wav_declared_duration(path: Path) -> float | None:
    try:
        with path.open("rb") as f:
            head = f.read(12)
        if len(head) == 12 and int.from_bytes(head[4:8], "little") in _UNKNOWN_SIZES:
            return None  # a streaming WAV: the RIFF size was never filled in
        with wave.open(str(path), "rb") as wav:
            frames = wav.getnframes()
            if frames * wav.getsampwidth() * wav.getnchannels() >= 0xFFFFFFFF - 64:
                return None  # the data size was never filled in
            return frames / wav.getframerate()
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return None  # not plain PCM WAV (e.g. extensible or compressed): trust FFmpeg


def _first_frame(container: av.container.InputContainer, stream: av.AudioStream) -> av.AudioFrame | None:
    for frame in container.decode(stream):
        if frame.samples > 0:
            return frame
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # FFmpeg errors look like "[Errno 1094995529] Invalid data found when processing input: 'x'"
    if text.startswith("[Errno") and "]" in text:
        text = text.split("]", 1)[1].strip()
    return text.split(": '")[0]


class FileSource:
    """Emits a recorded call as 16 kHz `AudioChunk`s, one per party per block, in call-time order.

    `blocks()` is a generator; decoding errors part-way through raise `AudioSourceError` after every
    block decoded so far has been yielded, so nothing already heard is lost.
    """

    live = False
    end_reason = EndReason.END_OF_AUDIO

    def __init__(
        self,
        path: Path,
        layout: ChannelLayout = ChannelLayout.AUTO,
        customer_channel: str = "left",
        block_s: float = 0.1,
    ) -> None:
        if customer_channel not in ("left", "right"):
            raise ValueError("customer_channel must be 'left' or 'right'")
        self.path = path
        self.info = probe_file(path)
        self.block_samples = round(block_s * TARGET_RATE)
        self.stereo = self.info.channels == 2 and (
            layout == ChannelLayout.STEREO
            or (layout == ChannelLayout.AUTO and not self._is_dual_mono())
        )
        if self.stereo:
            agent_channel = "right" if customer_channel == "left" else "left"
            self.channels = {customer_channel: Speaker.CUSTOMER, agent_channel: Speaker.AGENT}
            self._speakers: tuple[Speaker, ...] = (self.channels["left"], self.channels["right"])
        else:
            self.channels = {"mono": Speaker.UNKNOWN}
            self._speakers = (Speaker.UNKNOWN,)
        self.duration = 0.0  # call time decoded so far
        self.damaged_s = 0.0  # call time whose samples were NaN or infinite, played as silence

    @property
    def description(self) -> str:
        return str(self.path)

    def _decode(self, limit_s: float | None = None) -> Iterator[np.ndarray]:
        """Yield (channels, n) float32 blocks at 16 kHz, in the file's own channel count."""
        resampler = StreamResampler(self.info.rate, self.info.channels)
        produced = 0
        try:
            with av.open(str(self.path), metadata_errors="ignore") as container:
                stream = container.streams.audio[0]
                for frame in container.decode(stream):
                    if len(frame.layout.channels) != self.info.channels:
                        raise AudioSourceError(
                            f"{self.path}: channel count changes mid-file; not supported"
                        )
                    block = resampler.resample_frame(frame)
                    produced += block.shape[1]
                    yield block
                    if limit_s is not None and produced >= limit_s * TARGET_RATE:
                        return
        except AudioSourceError:
            raise
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            seconds = produced / TARGET_RATE
            raise AudioSourceError(
                f"{self.path}: audio is corrupt or truncated after {seconds:.1f} s ({_reason(exc)})"
            ) from None
        tail = resampler.flush()
        produced += tail.shape[1]
        yield tail
        if limit_s is None and self.info.duration is not None:
            seconds = produced / TARGET_RATE
            if seconds < self.info.duration - _TRUNCATION_TOLERANCE_S:
                raise AudioSourceError(
                    f"{self.path}: file is truncated: its header promises "
                    f"{self.info.duration:.1f} s of audio but it ends at {seconds:.1f} s"
                )

    def _is_dual_mono(self) -> bool:
        """Whether the first 30 s of a stereo file carry the same signal twice. Damage in them is
        not this check's to report: it decides on what comes before it, and the call itself is
        transcribed up to the damage, then stops with the reason."""
        blocks = []
        try:
            for block in self._decode(limit_s=_DUAL_MONO_SCAN_S):
                blocks.append(block)
        except AudioSourceError:
            pass
        audio = np.concatenate(blocks, axis=1) if blocks else np.zeros((2, 0), np.float32)
        audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
        if audio.shape[1] < TARGET_RATE // 10:
            return False
        left, right = audio[0].astype(np.float64), audio[1].astype(np.float64)
        if np.sqrt(np.mean(left**2) + 1e-20) < 1e-4 or np.sqrt(np.mean(right**2) + 1e-20) < 1e-4:
            return False  # one side silent: a real two-party recording whose other party is quiet
        corr = float(np.corrcoef(left, right)[0, 1])
        return corr >= _DUAL_MONO_CORRELATION

    def blocks(self) -> Iterator[list[AudioChunk]]:
        """Yield, for each block of call time, one chunk per party (same `t`, same length)."""
        pending = np.zeros((len(self._speakers), 0), dtype=np.float32)
        emitted = 0

        def cut(audio: np.ndarray) -> list[AudioChunk]:
            t = emitted / TARGET_RATE
            return [
                AudioChunk(t=t, speaker=speaker, samples=np.ascontiguousarray(audio[i]))
                for i, speaker in enumerate(self._speakers)
            ]

        failure: AudioSourceError | None = None
        try:
            for block in self._decode():
                finite = np.isfinite(block)
                if not finite.all():  # NaN or infinity: no sound anyone made; silence in its place
                    self.damaged_s += float((~finite).any(axis=0).sum()) / TARGET_RATE
                    block = np.where(finite, block, np.float32(0.0))
                if not self.stereo and block.shape[0] == 2:
                    block = block.mean(axis=0, keepdims=True)
                pending = np.concatenate([pending, block], axis=1)
                while pending.shape[1] >= self.block_samples:
                    out = pending[:, : self.block_samples]
                    pending = pending[:, self.block_samples :]
                    yield cut(out)
                    emitted += out.shape[1]
                    self.duration = emitted / TARGET_RATE
        except AudioSourceError as exc:
            failure = exc  # hand on what was decoded before the damage, then report it
        if pending.shape[1]:
            yield cut(pending)
            emitted += pending.shape[1]
            self.duration = emitted / TARGET_RATE
        if self.damaged_s:
            log.warning("%s: %.2f s of samples that are not numbers (NaN or infinity) were heard as "
                        "silence", self.path, self.damaged_s)
        if failure is not None:
            raise failure
        if emitted and self.damaged_s >= emitted / TARGET_RATE - 1 / TARGET_RATE:
            raise AudioSourceError(f"{self.path}: no sample in it is a number (all NaN or infinity): "
                                   "there is no audio to transcribe")
