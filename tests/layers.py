"""The test suite's layers, assigned and enforced (a pytest plugin, loaded by tests/conftest.py).

- `unit`: fast tests with fakes and small real inputs; `make test-fast` runs only these (under a
  minute). A test in neither layer below is given this mark.
- `models`: runs a speech model (Whisper or Moonshine) or the ONNX classifiers (the Silero VAD, which loads in
  milliseconds, does not count).
- `system`: real time and the system around us: PulseAudio, X (Xvfb), PostgreSQL, Chromium, paced
  real-time replays, the real command line in a subprocess.

Marks follow what a test uses, so a new test lands in its layer without saying so: what its code
and the code of its fixtures call by name, directly or through the tests' own helpers and classes
(`subprocess`, or a model loader named in MODEL_LOADERS), and the few fixtures whose code cannot
show it (SYSTEM_FIXTURES). What that misses is caught while the test runs: a test that runs a
model without the `models` mark, or starts a process without the `system` mark, fails and says
which mark it needs. A paced real-time wait shows neither way; those few tests carry `system` by
hand.
"""

from __future__ import annotations

import inspect
import subprocess
from collections.abc import Iterator
from types import CodeType
from typing import Any

import pytest

# what loads a model when called, by name, wherever in agent_assist it lives
MODEL_LOADERS = {"shipped", "Classifiers", "Transcriber", "load_whisper", "load_moonshine",
                 "load_speech_model", "MoonshineModel", "Models", "load_moonshine_base",
                 "build_moonshine_base"}
# fixtures that start a server through a module imported inside them
SYSTEM_FIXTURES = {"pg_server"}
# the command line run in-process (tests/test_cli.py's `agent_assist`): these commands load models
CLI_HELPER = "agent_assist"
MODEL_COMMANDS = {"replay", "score", "eval", "evaluate", "train", "run"}


def pytest_configure(config: pytest.Config) -> None:
    _watch_models_and_processes()  # the marks themselves are registered in pyproject.toml


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        reached = _reached(item.function)
        for name in item.fixturenames:
            for definition in item._fixtureinfo.name2fixturedefs.get(name, ()):
                reached |= _reached(definition.func)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if set(item.fixturenames) & SYSTEM_FIXTURES or params.get("store_url") == "postgresql":
            reached.add("system")
        for layer in sorted(reached):
            item.add_marker(layer)
        if not item.get_closest_marker("models") and not item.get_closest_marker("system"):
            item.add_marker("unit")


def _codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def _reached(function: Any, depth: int = 0) -> set[str]:
    """The layers a function's code reaches by name: `subprocess`, a model loader, or a function
    or class of the tests' own (followed two calls deep) that reaches one."""
    function = inspect.unwrap(function)
    if not inspect.isfunction(function):
        return set()
    layers: set[str] = set()
    for code in _codes(function.__code__):
        names = code.co_names
        helper = function.__globals__.get(CLI_HELPER)
        if (CLI_HELPER in names and getattr(helper, "__module__", "") == "tests.test_cli"
                and MODEL_COMMANDS & {c for c in code.co_consts if isinstance(c, str)}):
            layers.add("models")  # a command that loads the models, run in this process
        # `pa.PulseServer(...)`: a module of the tests' own, and what of it the code names
        helpers = [m for m in (function.__globals__.get(n) for n in names)
                   if inspect.ismodule(m) and m.__name__.startswith("tests")]
        for name in names:
            value = function.__globals__.get(name)
            if value is None:
                value = next((getattr(m, name) for m in helpers if hasattr(m, name)), None)
            module = getattr(value, "__module__", "") or ""
            if value is subprocess or (name == "subprocess" and value is None):
                layers.add("system")
            elif name in MODEL_LOADERS and (value is None or module.startswith("agent_assist")):
                # a loader imported in the function itself is a name without a global value
                layers.add("models")
            elif depth < 2 and module.startswith("tests"):
                if inspect.isclass(value):
                    value = value.__dict__.get("__init__")
                if value is not None:
                    layers |= _reached(value, depth + 1)
    return layers


# -- what a running test uses ----------------------------------------------------------------------

_used: list[tuple[str, str]] = []  # (the layer it needs, what was used) since the phase began


def _watch_models_and_processes() -> None:
    """Note each model run or loaded and each process started, whoever starts it."""
    import onnxruntime
    from faster_whisper import WhisperModel

    def noting(cls: type, name: str, layer: str, what: Any) -> None:
        original = getattr(cls, name)
        if getattr(original, "_layer_watch", False):
            return

        def watched(self: Any, *args: Any, **kwargs: Any) -> Any:
            used = what(self, args)
            if used:
                _used.append((layer, used))
            return original(self, *args, **kwargs)

        watched._layer_watch = True  # type: ignore[attr-defined]
        setattr(cls, name, watched)

    def onnx_model(session: Any, _: tuple[Any, ...]) -> str:
        path = getattr(session, "_model_path", None)
        if path is None:
            return "an in-memory ONNX model"
        return "" if "silero" in str(path) else f"the ONNX model {path}"

    def process(_: Any, args: tuple[Any, ...]) -> str:
        argv = args[0] if args else "?"
        shown = " ".join(str(a) for a in argv[:4]) if isinstance(argv, list | tuple) else str(argv)
        return f"a process ({shown})"

    noting(WhisperModel, "__init__", "models", lambda *_: "the Whisper model")
    noting(WhisperModel, "encode", "models", lambda *_: "the Whisper model")
    noting(onnxruntime.InferenceSession, "run", "models", onnx_model)
    noting(subprocess.Popen, "__init__", "system", process)


def _check(item: pytest.Item) -> None:
    wrong = [(layer, what) for layer, what in _used if not item.get_closest_marker(layer)]
    _used.clear()
    if wrong:
        layer, what = wrong[0]
        pytest.fail(f"{item.nodeid} used {what} but is not marked `{layer}` (tests/layers.py says how "
                    f"marks are given); add @pytest.mark.{layer}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _used.clear()
    yield
    _check(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _used.clear()
    yield
    _check(item)
