"""Where each test runs when the suite is spread over processes (a pytest plugin, loaded by
tests/conftest.py; `make test` runs two pytest-xdist workers with `--dist loadgroup`).

xdist hands out the tests one at a time, to whichever worker is free, except those in the same
`xdist_group`: a group runs on one worker, in order. The groups are given here, from what a test
uses, so a new test lands in the right one without saying so:

- `sample-call`: the tests that read the sample call's replay (the `sample_call` fixture). One
  worker replays it once (about 40 s of CPU) and runs them all; the other worker keeps working
  meanwhile, where it would otherwise wait for the replay to read its event log.
- a test file's own group, for a test that uses a fixture built once per file (a PulseAudio server,
  a replayed call, a built wheel): built once, on one worker. tests/test_live.py's live-capture
  tests are one of these: they share one sound server and run one at a time, so a live session
  never competes with another for the sound server or for its deadlines.

The tests go out heaviest layer first (models and system before unit), so the many quick unit tests
fill in at the end while a worker finishes a long test. Without xdist (plain `pytest`) nothing here
changes the run.
"""

from __future__ import annotations

import pytest

# session fixtures that one worker builds for a whole group, rather than each worker building its own
GROUPED_SESSION_FIXTURES = {"sample_call": "sample-call"}
ONCE_PER_FILE = {"module", "class", "package"}


def group_of(item: pytest.Function) -> str | None:
    fixtures = item._fixtureinfo.name2fixturedefs
    for name, group in GROUPED_SESSION_FIXTURES.items():
        if name in item.fixturenames:
            return group
    for name in item.fixturenames:
        definitions = fixtures.get(name, ())
        if definitions and definitions[-1].scope in ONCE_PER_FILE:
            return item.nodeid.split("::", 1)[0]
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and not item.get_closest_marker("xdist_group"):
            group = group_of(item)
            if group is not None:
                item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(tryfirst=True)  # before the worker sends the ids
def pytest_collection_finish(session: pytest.Session) -> None:
    """What a worker tells xdist's scheduler is each test's id, and `--dist loadgroup` reads the
    group from its end (`...::test_x@group`). xdist 3.8 writes that suffix into `item._nodeid`,
    which pytest 9 no longer reads (an id is `item._id`), so every test went out on its own and
    the groups were ignored; written here where xdist's did not take."""
    if not getattr(session.config.option, "loadgroup", False):  # a worker of `--dist loadgroup`
        return
    from _pytest.nodeid import NodeId

    # and the heavy ones first: a worker that is free takes the next in this order, so the many
    # quick unit tests come last and fill in while the other worker finishes a long test
    session.items.sort(key=lambda item: not (item.get_closest_marker("models")
                                             or item.get_closest_marker("system")))
    for item in session.items:
        marks = item.iter_markers("xdist_group")
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks})
        if names and "@" not in item.nodeid:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")
