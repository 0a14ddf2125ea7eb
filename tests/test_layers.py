"""The layers hold: a test lands in the layer of what it uses, and one that uses a model or starts a
process without its mark fails (tests/layers.py)."""

from __future__ import annotations

import onnx  # noqa: F401  (see below)
import pytest

# The inner runs are in this process (pytester.inline_run), which takes away, when each ends, every
# module it imported: an `onnx` first imported there would take ml_dtypes with it, whose numpy dtypes
# stay registered, and the next `import onnx` in this worker would then fail ("DType bfloat16 appears
# already registered"). Imported here, before them, it stays.

INNER = '''
import importlib
import sys

import numpy as np
import pytest


def tiny_onnx_model():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnxruntime = importlib.import_module("onnxruntime")
    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_starts_a_process_unmarked():
    importlib.import_module("subprocess").run(["true"], check=True)


@pytest.mark.system
def test_starts_a_process_marked():
    importlib.import_module("subprocess").run(["true"], check=True)


def test_runs_a_model_unmarked():
    tiny_onnx_model().run(None, {"x": np.zeros(1, np.float32)})


@pytest.mark.models
def test_runs_a_model_marked():
    tiny_onnx_model().run(None, {"x": np.zeros(1, np.float32)})


def test_calls_a_loader():
    from agent_assist.scoring.models import shipped

    assert shipped  # named, not called: marked `models` by its name alone


def test_imports_subprocess_itself():
    import subprocess

    assert subprocess  # marked `system` by the name alone


def test_plain():
    assert 1 + 1 == 2
'''


def test_marks_follow_what_a_test_uses(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    unit = pytester.inline_run("-p", "tests.layers", "-m", "unit", "--collect-only", "-q")
    names = {item.name for item in unit.getcalls("pytest_collection_finish")[0].session.items}
    assert names == {"test_starts_a_process_unmarked", "test_runs_a_model_unmarked", "test_plain"}
    models = pytester.inline_run("-p", "tests.layers", "-m", "models", "--collect-only", "-q")
    names = {item.name for item in models.getcalls("pytest_collection_finish")[0].session.items}
    assert names == {"test_runs_a_model_marked", "test_calls_a_loader"}


def test_a_test_that_runs_a_model_or_starts_a_process_unmarked_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_inprocess("-p", "tests.layers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=2)
    result.stdout.fnmatch_lines([
        "*test_starts_a_process_unmarked used a process (true) but is not marked `system`*",
        "*test_runs_a_model_unmarked used an in-memory ONNX model but is not marked `models`*",
    ])
