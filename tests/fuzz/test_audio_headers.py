"""Audio files under arbitrary damage (Hypothesis): a valid WAV with bytes of its header changed, cut
short, or followed by junk. Whatever the file holds, reading it gives audio or one
`AudioSourceError`, never another exception, never a hang, and never a sample that is not a number.

Derandomized (the same examples every run) and small, so it runs with the fast layer."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_assist.audio.files import FileSource
from agent_assist.errors import AudioSourceError
from tests.test_audio_files import riff

GOOD = riff()
FUZZ = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

#: Changes to the header (the first 44 bytes): position, new byte.
EDITS = st.lists(st.tuples(st.integers(0, 43), st.integers(0, 255)), min_size=1, max_size=6)


def read(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "call.wav"
        path.write_bytes(data)
        try:
            source = FileSource(path)
            for chunks in source.blocks():
                for chunk in chunks:
                    assert np.isfinite(chunk.samples).all()
        except AudioSourceError as exc:
            assert str(exc).count("\n") == 0  # one line


@FUZZ
@given(EDITS)
def test_any_header_damage_reads_or_is_one_clean_error(edits):
    data = bytearray(GOOD)
    for at, value in edits:
        data[at] = value
    read(bytes(data))


@FUZZ
@given(st.integers(0, len(GOOD)), st.binary(max_size=64))
def test_a_file_cut_anywhere_or_followed_by_junk_reads_or_is_one_clean_error(cut, junk):
    read(GOOD[:cut] + junk)
