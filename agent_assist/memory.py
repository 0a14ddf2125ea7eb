"""The C allocator's settings for a process that runs calls: large buffers go back to the system
when they are freed.

A call allocates many buffers of a megabyte or more and frees them soon: a turn's audio, a speech
model's tensors sized by that audio. glibc serves a block that large from its own mmap, until the
first one is freed; then it raises that threshold to the freed block's size (up to 32 MB), so the
next ones come from the heap, where a freed block stays in the process unless it is the heap's top.
Over a call the memory held grows to the largest turns' worth. Fixing the threshold at 1 MB (and
trimming the heap's top from 1 MB) keeps them on mmap: the sample call and the six clips at real
time with Moonshine base-en held a peak of 393 MB this way against 416 MB (bench/run.py's figure;
the same speed unpaced, 25-26x). Elsewhere than glibc (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys

log = logging.getLogger(__name__)

LARGE = 1 << 20  # bytes: a buffer this large or larger is mapped on its own, and unmapped when freed
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


@functools.cache
def large_buffers_unmapped_when_freed() -> bool:
    """Set glibc's mmap and trim thresholds to `LARGE` for this process (once); whether it took."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    took = mallopt(_M_MMAP_THRESHOLD, LARGE) == 1 and mallopt(_M_TRIM_THRESHOLD, LARGE) == 1
    if not took:
        log.debug("the C library refused mallopt: large buffers stay as it places them")
    return took
