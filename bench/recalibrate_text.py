"""Calibrate a trained text model again, as onnxruntime now runs it, without fine-tuning it again.

    python bench/recalibrate_text.py classifiers --data data        # the shipped model, in place

`classifiers train` fits each signal's calibration, the operating points and the held-out metrics
on the exported int8 model as `models._session` runs it (`training.calibrate`). When the way it is
run changes (an onnxruntime fusion left out, `models.DISABLED_FUSIONS`), the scores move by int8
noise and the calibration fitted before no longer matches them. This runs that last step of the
training again on the same held-out rows (the same data and seed give the same split), writes the
new calibration into `text.onnx` and the new figures into `manifest.json`. The weights are not
touched, so on the kind of CPU the model was trained on the file is what a full `classifiers
train` of the same data gives, to the byte (another CPU's float kernels give other last bits).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def recalibrate(models: Path, data: Path) -> dict:
    """Calibrate `models/text.onnx` again on `data`'s held-out rows; update `models/manifest.json`.
    Returns the manifest as written."""
    from agent_assist.scoring import corpus, training
    from agent_assist.scoring.turns import TurnTokenizer

    manifest_path = models / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("seed") != training.SEED:
        raise SystemExit(f"{manifest_path}: trained with seed {manifest.get('seed')}, this checkout "
                         f"splits with {training.SEED}; retrain instead")
    rows = corpus.load(data)
    held_rows = [rows[i] for i in training.split(rows).held_out]
    trained_on = manifest["text"]["held_out_rows"]
    counted = dict(sorted(Counter(r.source for r in held_rows).items()))
    if counted != trained_on:
        raise SystemExit(f"{data}: its held-out rows ({counted}) are not the ones the model was trained "
                         f"beside ({trained_on}); retrain instead")
    held_data = training.encode_rows(TurnTokenizer(models / "tokenizer.json"), held_rows)
    calibrated = training.calibrate(models / "text.onnx", held_rows, held_data)
    manifest["operating_points"] = calibrated.pop("operating_points")
    manifest["text"].update(calibrated)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", type=Path,
                        help="a classifiers folder (text.onnx, tokenizer.json, manifest.json)")
    parser.add_argument("--data", type=Path, required=True, help="the data the model was trained on")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    manifest = recalibrate(args.models, args.data)
    print(f"calibrated {args.models / 'text.onnx'} again: a {manifest['text']['calibration']['a']}, "
          f"b {manifest['text']['calibration']['b']}; operating points {manifest['operating_points']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
