"""The allocator setting a process that runs calls gets (agent_assist/memory.py): buffers of a megabyte
or more go back to the system when freed, instead of staying in the heap under one small buffer
still in use. Each case runs in a fresh interpreter, as the setting is the process's."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

HEAP = textwrap.dedent("""
    import sys
    import numpy as np
    from agent_assist.memory import large_buffers_unmapped_when_freed
    if sys.argv[1] == "set":
        assert large_buffers_unmapped_when_freed()
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
    base = rss()
    first = np.ones(4_000_000 // 8)  # freed: glibc then serves blocks under 4 MB from its heap
    del first
    turns = [np.ones(3_000_000 // 8) for _ in range(30)]  # a call's turns' audio, 3 MB each
    held = [np.ones(1000) for _ in range(100)]  # small buffers still in use, above them
    del turns
    print(round(rss() - base))
""")


def retained_mb(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", HEAP, mode], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_large_buffers_freed_go_back_to_the_system():
    """(`call.Models.load` sets it, for every process that runs calls.)"""
    assert retained_mb("default") >= 60  # 90 MB freed, and held by the process
    assert retained_mb("set") <= 10

