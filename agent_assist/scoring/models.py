"""The shipped classifiers, run with onnxruntime. No PyTorch, no scikit-learn, nothing unpickled.

`classifiers/` (installed as `agent_assist.classifiers`; see `resources.py`) holds two ONNX files, a
tokenizer and a manifest:

* `text.onnx` + `tokenizer.json`: MiniLM (all-MiniLM-L6-v2's weights, fine-tuned here end to end,
  int8) reading a customer's turn with its context, the customer's previous turn and the agent's
  words just before it (`turns.py`), so "no, not the house, I'll pick it up" after "shall I post it
  to your home address?" reads as what it is. Out come calibrated probabilities of distress,
  escalation and crisis, and which kind of crisis it would be (self-harm, violence, danger).
* `acoustic.onnx`: features of the voice (see `acoustic.FEATURES`), their change from the
  speaker's baseline and whether there is one → probabilities that it sounds angry, sad or fearful
  (each against neutral or calm speech).
* `manifest.json`: versions, the acoustic models' training priors (for fusing), the operating points
  shipped with them, and the metrics measured when they were built.

Text and voice are fused as two independent pieces of evidence: the voice's log-likelihood ratio is
added to the text's log-odds, softly limited (see `Classifiers.fuse`).
Crisis comes from the words and their context only; the voice never lowers it. Context may raise
a signal over what the words alone say by at most `CONTEXT_LIFT` (see `Classifiers.score_turns`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from agent_assist import resources
from agent_assist.errors import ModelError
from agent_assist.scoring import acoustic
from agent_assist.scoring.turns import CRISIS_KINDS, Turn, TurnTokenizer

TEXT_SIGNALS = ("distress", "escalation", "crisis")  # the order of the text model's outputs
VOICE_HEADS = ("escalation", "sad", "fearful")
VOICE_LLR_UP = 3.0  # the voice raises the odds by less than e^3 ≈ 20 times
VOICE_LLR_DOWN = 2.0  # and lowers them by less than e^2 ≈ 7 times
VOICE_SOFTNESS = 2.0  # how gently the limits are approached (tanh of the evidence over this x limit)
VOICE_FULL_WEIGHT_S = 1.0  # seconds of speech for the voice to count fully
#: The context may raise the odds of what a turn's own words say by at most e^5 ≈ 150 times: "the
#: amount is one hundred eleven dollars" after "if he said that I didn't get it" read as a crisis
#: 0.82 (alone 0.0004), while "no, not the house" after a question about post still reads as one.
CONTEXT_LIFT = 5.0
#: Below this in context no signal is near an operating point, and the turn is not read again alone.
CONTEXT_CHECK_FROM = 0.1


def _logit(p: np.ndarray | float) -> Any:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


#: onnxruntime's load-time fusions left out. Its `SkipLayerNormalization` (the residual Add and
#: the LayerNormalization after it, as one node) took a fifth of the text model's time on one core
#: (onnxruntime 1.32, 2-core EPYC: 0.105 ms a node against 0.018 ms for a LayerNormalization of the
#: same size); unfused, a turn is read in 5.4 ms instead of 6.8. The training calibrates on this
#: session too (`training.calibrate`), so a model is always measured as it runs.
DISABLED_FUSIONS = ("SkipLayerNormFusion",)


def _session(path: Path, threads: int = 1, build: str = "agent-assist classifiers train") -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise ModelError(f"{path}: classifier model missing; run `{build}`")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=list(DISABLED_FUSIONS))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: not a usable ONNX model ({str(exc).splitlines()[0]})") from exc


@dataclass(frozen=True)
class TextScores:
    """The text model's view of some turns: (N, 3) signals and (N, K) crisis-kind probabilities."""

    signals: np.ndarray
    kinds: np.ndarray

    def kind(self, row: int) -> str:
        """The most likely kind of crisis for `row` (meaningful when its crisis score is high)."""
        return CRISIS_KINDS[int(np.argmax(self.kinds[row]))]

    def kinds_of(self, row: int) -> dict[str, float]:
        """Each kind's probability for `row`, by name."""
        return {k: float(v) for k, v in zip(CRISIS_KINDS, self.kinds[row], strict=True)}


class TextModel:
    """`text.onnx` and its tokenizer: turns with their context → calibrated signals and kinds."""

    def __init__(self, directory: Path, threads: int = 1) -> None:
        self.tokenizer = TurnTokenizer(directory / "tokenizer.json")
        self.session = _session(directory / "text.onnx", threads)

    def __call__(self, turns: Sequence[Turn]) -> TextScores:
        """One turn at a time: the int8 graph quantises activations per run, so a batch would make a
        turn's score depend on its neighbours. Live scoring is one at a time too. A turn too long for
        one window is read in overlapping windows; each signal is its highest over them, and the kind
        is the one of the window most likely to be a crisis."""
        signals = np.zeros((len(turns), len(TEXT_SIGNALS)), np.float32)
        kinds = np.zeros((len(turns), len(CRISIS_KINDS)), np.float32)
        for row, turn in enumerate(turns):
            best = -1.0
            for ids, types in self.tokenizer.windows(turn):
                feed = {"input_ids": ids[None, :], "token_type_ids": types[None, :],
                        "attention_mask": np.ones((1, len(ids)), np.int64)}
                probs, kind = self.session.run(["probabilities", "kind"], feed)
                signals[row] = np.maximum(signals[row], probs[0])
                if probs[0][2] > best:
                    best, kinds[row] = float(probs[0][2]), kind[0]
        return TextScores(signals, kinds)


class Classifiers:
    """The three ONNX models and their manifest, loaded once per process.

    `encoder_threads` (the text model's): 1 on a call (the agent's desktop has other work); a batch
    job such as the
    evaluation may use every core, with the same embeddings to the bit (int8 matrix products).
    """

    def __init__(self, directory: Path | None = None, encoder_threads: int = 1) -> None:
        directory = resources.models() if directory is None else directory  # None: the shipped ones
        self.directory = directory
        manifest = directory / "manifest.json"
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{manifest}: missing; run `agent-assist classifiers train`") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"{manifest}: unreadable ({exc})") from exc
        self.text = TextModel(directory, threads=encoder_threads)
        self.voice = _session(directory / "acoustic.onnx")
        self.voice_prior = np.array([self.manifest["acoustic"]["prior"][s] for s in VOICE_HEADS])
        self.thresholds: dict[str, float] = dict(self.manifest["operating_points"])
        voice = self.manifest["acoustic"]
        if list(voice["features"]) != list(acoustic.FEATURES) or \
                list(voice.get("relative", ())) != list(acoustic.RELATIVE):
            raise ModelError(f"{manifest}: acoustic features differ from this version's; retrain with "
                             "`agent-assist classifiers train --voice-only`")

    def score_text(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 3) calibrated probabilities of distress, escalation and crisis from words alone, each
        text read without context."""
        return self.text([Turn(t) for t in texts]).signals

    def score_turns(self, turns: Sequence[Turn]) -> TextScores:
        """Turns read with their context: signals and crisis kinds. A turn whose context lifts a
        signal is read again alone, and the context may raise each signal's odds over the words'
        own by at most `CONTEXT_LIFT` (in log-odds): context sharpens what the words say, it cannot
        put a crisis into "the amount is one hundred eleven dollars"."""
        read = self.text(turns)
        again = [i for i, t in enumerate(turns) if (t.agent_prev.strip() or t.customer_prev.strip())
                 and read.signals[i].max() >= CONTEXT_CHECK_FROM]
        if again:
            alone = self.text([Turn(turns[i].text) for i in again]).signals
            lifted = read.signals[again]
            capped = _sigmoid(np.minimum(_logit(lifted), _logit(alone) + CONTEXT_LIFT))
            read.signals[again] = capped.astype(np.float32)
        return read

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
