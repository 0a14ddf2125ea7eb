"""Spread over two workers (`make test`), what shares a fixture built once runs on one worker, in
order, and the rest goes wherever a worker is free (tests/schedule.py)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

INNER = '''
import pytest


@pytest.fixture(scope="module")
def built_once():
    return object()


@pytest.fixture(scope="session")
def sample_call():
    return object()


@pytest.mark.parametrize("n", range(3))
def test_uses_the_module_fixture(built_once, n):
    pass


@pytest.mark.parametrize("n", range(3))
def test_reads_the_sample_call(sample_call, n):
    pass


@pytest.mark.parametrize("n", range(6))
def test_plain(n):
    pass
'''


@pytest.mark.system  # a pytest run with two worker processes
def test_groups_stay_on_one_worker_and_the_rest_is_spread(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_inner=INNER)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    result = pytester.runpytest_subprocess("-p", "tests.schedule", "-n", "2", "--dist", "loadgroup",
                                           "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)
    ran = re.findall(r"\[(gw\d)\] .*PASSED (test_inner\.py::\S+)", result.stdout.str())
    assert len(ran) == 12, result.stdout.str()
    workers: dict[str, set[str]] = {}
    for worker, test in ran:
        name = test.split("[")[0].split("::")[1]
        workers.setdefault(name, set()).add(worker)
        if name != "test_plain":
            assert test.endswith(("@test_inner.py", "@sample-call")), test  # its group, for xdist
    assert len(workers["test_uses_the_module_fixture"]) == 1
    assert len(workers["test_reads_the_sample_call"]) == 1
