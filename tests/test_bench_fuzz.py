"""A smoke run of the nightly fuzz script (bench/fuzz.py, `make bench-fuzz`), so it cannot rot: a
few cases of each family, every count present and 0."""

import json
import subprocess
import sys

from tests.conftest import REPO


def test_the_fuzz_run_counts_every_outcome_and_finds_nothing(tmp_path):
    out = tmp_path / "fuzz.json"
    command = [sys.executable, str(REPO / "bench" / "fuzz.py"), "--packs", "40", "--transcripts", "20",
               "--tables", "20", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [report["families"][f]["cases"] for f in ("packs", "transcripts", "tables")] == [40, 20, 20]
    assert report["total"]["ok"] == 80
    assert "total: 80 cases" in result.stdout and "internal 0, hang 0" in result.stdout
