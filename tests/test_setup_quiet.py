"""Setting up says nothing alarming: building the package (as `make demo` and `make test` install it)
gives no setuptools warning but the one the Makefile filters by its words, and quantising a model
(`classifiers train`) gives no onnxruntime advice about pre-processing."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from agent_assist.scoring.training import quantise
from tests.conftest import REPO
from tests.test_wheel import _sources

ADVICE = "Please consider to run pre-processing before quantization"


def _tiny_graph(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4) / 16, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_quantising_gives_no_advice_about_pre_processing(tmp_path, caplog):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = tmp_path / "tiny.onnx"
    _tiny_graph(source)
    with caplog.at_level(logging.WARNING):
        quantize_dynamic(source, tmp_path / "plain.onnx", weight_type=QuantType.QInt8)
    assert any(r.getMessage().startswith(ADVICE) for r in caplog.records), "onnxruntime no longer says it"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        quantise(source, tmp_path / "int8.onnx")
        logging.getLogger().warning("a warning of our own still shows")
    assert [r.getMessage() for r in caplog.records] == ["a warning of our own still shows"]
    assert (tmp_path / "int8.onnx").stat().st_size > 0


def test_building_the_package_warns_of_nothing_but_what_the_makefile_filters(tmp_path):
    """The wheel and the editable install, built by setuptools with every warning an error except the
    Makefile's filter (pip shows a build's warnings since pip 25)."""
    action, message = re.search(r'PYTHONWARNINGS="(\w+):([^"]+)"', (REPO / "Makefile").read_text()).groups()
    assert (action, message) == ("ignore", "Editable installation")
    src = tmp_path / "src"
    src.mkdir()
    _sources(src)
    code = ("import warnings, setuptools.build_meta as backend\n"
            "warnings.simplefilter('error')\n"
            f"warnings.filterwarnings({action!r}, message={message!r})\n"
            f"backend.build_wheel({str(tmp_path / 'wheel')!r})\n"
            f"backend.build_editable({str(tmp_path / 'editable')!r})\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((tmp_path / "wheel").glob("*.whl")) and list((tmp_path / "editable").glob("*.whl"))
