"""Re-export a trained text model through this checkout's export path, without retraining.

    python bench/reexport_text.py classifiers/text.onnx            # in place
    python bench/reexport_text.py /work/train-out/text.onnx -o new/text.onnx

An exported `text.onnx` holds everything its export was made from: the encoder's int8 weights with
their per-channel scales (dequantised here, they quantise back to the same integers and scales),
the float heads, the calibration and the doc string. So a model trained before the export path
changed (for example before the attention was fused, `onnx_graphs.fused`) can take the new path
as it is. Nothing is kept unless the weights read back from the new file are the old file's to the
bit: only the graph around them may change. Then the scores agree to int8 noise; measure them with
`agent-assist classifiers eval` and the speed with `python bench/run.py --text-model-only`.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: The embeddings' initialisers in the graph, by their names in the released encoder.
EMBEDDINGS = {"word": "embeddings.word_embeddings.weight",
              "position": "embeddings.position_embeddings.weight",
              "token_type": "embeddings.token_type_embeddings.weight"}
PROJECTIONS = ("query", "key", "value")


def _dequantised(q: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """int8 → float: per tensor (a scalar scale) or per output column (a scale per column)."""
    if scale.ndim == 0 or scale.size == 1:
        return ((q.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)
    return ((q.astype(np.float32) - zero.astype(np.float32)[None, :]) * scale[None, :]).astype(np.float32)


def read_back(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, str]:
    """The weights (by the released encoder's names, float), calibration and doc string of an
    exported text model, fused (`QAttention`) or not."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights: dict[str, np.ndarray] = {}
    for name, value in init.items():
        if name.endswith("_quantized"):
            base = name.removesuffix("_quantized")
            w = _dequantised(value, init[base + "_scale"], init[base + "_zero_point"])
            if base in EMBEDDINGS:
                weights[EMBEDDINGS[base]] = w
            elif base.endswith(".weight_t"):
                weights[base.removesuffix("_t")] = np.ascontiguousarray(w.T)
        elif name.startswith(("encoder.", "embeddings.")) and not name.endswith(("_scale", "_zero_point")):
            weights[name] = value
    attention = [n for n in model.graph.node if n.op_type == "QAttention"]  # in layer order
    for layer, node in enumerate(attention):
        qkv = _dequantised(init[node.input[1]], init[node.input[4]], init[node.input[7]])
        bias = init[node.input[2]]
        for part, (w, b) in zip(PROJECTIONS, zip(np.split(qkv, 3, axis=1), np.split(bias, 3), strict=True),
                                strict=True):
            prefix = f"encoder.layer.{layer}.attention.self.{part}"
            weights[prefix + ".weight"], weights[prefix + ".bias"] = np.ascontiguousarray(w.T), b
    for head in ("signals", "kind"):
        weights[head + ".weight"] = np.ascontiguousarray(init[head + "_w"].T)
        weights[head + ".bias"] = init[head + "_b"]
    return weights, init["calib_a"], init["calib_b"], model.doc_string


def reexport(source: Path, target: Path) -> dict[str, int]:
    """`source` through `training.export_text` to `target`; the graph's operators by count."""
    import onnx

    from agent_assist.scoring import training

    weights, calib_a, calib_b, doc = read_back(source)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "text.onnx"
        training.export_text(weights, out, calib_a, calib_b)
        again, a2, b2, _ = read_back(out)
        differ = sorted(k for k in weights.keys() | again.keys()
                        if k not in weights or k not in again or not np.array_equal(weights[k], again[k]))
        if differ or not (np.array_equal(calib_a, a2) and np.array_equal(calib_b, b2)):
            raise SystemExit(f"{source}: the weights do not read back the same ({', '.join(differ[:5])}); "
                             "nothing written")
        model = onnx.load(str(out))
        model.doc_string = doc
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(model.SerializeToString())
    return dict(collections.Counter(n.op_type for n in onnx.load(str(target)).graph.node))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="an exported text.onnx")
    parser.add_argument("-o", "--out", type=Path, default=None, help="where to write it (default: in place)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    ops = reexport(args.source, args.out or args.source)
    print(f"written {args.out or args.source}: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
