"""The shipped classifiers: ONNX only, calibrated, measured on held-out sets, wired into the call."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent_assist.errors import ModelError
from agent_assist.events import Speaker, Utterance
from agent_assist.scoring import corpus, training
from agent_assist.scoring.models import MODEL_DIR, Classifiers, shipped
from tests.conftest import REPO
from tests.test_cli import agent_assist

SHARED = REPO.parent / "shared" / "data"
DEV = SHARED / "text" / "dev-eval"
VOICE = SHARED / "emotional-speech"
CALLS = SHARED / "calls" / "harper_valley_dev.jsonl"
CRISIS_EVAL = REPO / "tests" / "data" / "crisis_eval.tsv"

needs_dev = pytest.mark.skipif(not DEV.is_dir(), reason=f"dev sets not on this machine ({DEV})")
needs_voice = pytest.mark.skipif(not VOICE.is_dir(), reason=f"emotional speech not on this machine ({VOICE})")
needs_calls = pytest.mark.skipif(not CALLS.is_file(), reason=f"calm calls not on this machine ({CALLS})")


@pytest.fixture(scope="module")
def models() -> Classifiers:
    return shipped()


def score(models: Classifiers, *texts: str) -> np.ndarray:
    return models.score_text(list(texts))


# -- what ships ----------------------------------------------------------------------------------


def test_models_are_onnx_files_and_nothing_else_is_loadable():
    files = {p.name for p in MODEL_DIR.iterdir()}
    shipped_files = {"encoder.onnx", "text.onnx", "acoustic.onnx", "tokenizer.json", "manifest.json",
                     "CARD.md"}
    assert shipped_files <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".npy", ".npz"))]
    import onnx

    for name in ("encoder.onnx", "text.onnx", "acoustic.onnx"):
        onnx.checker.check_model(str(MODEL_DIR / name))


def test_the_live_path_never_imports_scikit_learn():
    code = (
        "import sys\n"
        "from agent_assist.scoring.scorer import Scorer, VoiceAnalyser\n"
        "from agent_assist.scoring.models import shipped\n"
        "print(shipped().score_text(['I want to speak to a manager']))\n"
        "loaded = [m for m in sys.modules if m.startswith(('sklearn', 'scipy', 'onnx.'))]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_outputs_are_probabilities_in_order_for_a_batch(models):
    texts = ["", "?!", "ok", "I want to speak to a manager right now", "x" * 5000, "my husband passed away",
             "\x1b[2J<script>alert(1)</script>\u202e\u0000 😢 ça ne va pas", "word " * 400]
    batch = score(models, *texts)
    assert batch.shape == (len(texts), 3)
    assert np.all((batch >= 0) & (batch <= 1))
    one_by_one = np.vstack([score(models, t) for t in texts])
    assert np.allclose(batch, one_by_one, atol=1e-5)


def test_missing_or_broken_models_are_one_line_errors(tmp_path):
    broken = tmp_path / "classifiers"
    shutil.copytree(MODEL_DIR, broken)
    (broken / "text.onnx").unlink()
    with pytest.raises(ModelError, match=r"text\.onnx: classifier model missing"):
        Classifiers(broken)
    (broken / "text.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"text\.onnx: not a usable ONNX model"):
        Classifiers(broken)
    (broken / "manifest.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelError, match=r"manifest\.json: unreadable"):
        Classifiers(broken)


# -- what they say -------------------------------------------------------------------------------


def test_contact_centre_phrasing(models):
    calm = score(models, "Can you tell me when my next payment is due?", "Yes, that's right.",
                 "My account number is four five six two.", "No, that's everything. Thanks.")
    assert calm.max() < 0.35, calm
    distress, escalation, _ = score(models, "My husband passed away two months ago and I can't cope.").T
    assert distress[0] > 0.8
    _, escalation, _ = score(models, "This is the third time I've called and nobody has fixed it.").T
    assert escalation[0] > 0.6
    _, escalation, _ = score(models, "I want to speak to a manager, right now.").T
    assert escalation[0] > models.thresholds["escalation"]


def test_crisis_set_precision_and_recall(models):
    """The crisis set is ours (tests/data/crisis_eval.tsv), kept apart from anything trained on.

    Target: precision >= 0.95 at recall >= 0.90; shipped: 0.976 at 0.921 (see classifiers/CARD.md
    for how the operating point was chosen).
    """
    with CRISIS_EVAL.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    p = score(models, *(r["text"] for r in rows))[:, 2]
    y = np.array([r["crisis"] == "1" for r in rows])
    hit = p >= models.thresholds["crisis"]
    precision = (hit & y).sum() / hit.sum()
    recall = (hit & y).sum() / y.sum()
    print(f"crisis: precision {precision:.3f} recall {recall:.3f}")
    assert precision >= 0.95
    assert recall >= 0.90


KNOWN_MISS = pytest.mark.xfail(strict=True, reason="crisis 0.52 with the shipped model (classifiers/CARD.md)")
FIGURES = ["this bill is killing me", pytest.param("I could kill for a coffee", marks=KNOWN_MISS),
           "my phone died", "I want to end my contract", "I'm dying to know the price"]


@pytest.mark.parametrize("text", FIGURES)
def test_figures_of_speech_are_not_crises(models, text):
    assert score(models, text)[0, 2] < models.thresholds["crisis"]


@needs_calls
def test_calm_calls_rarely_raise_anything(models):
    """Harper Valley's scripted bank calls: any alert there is a false alarm."""
    calls = [json.loads(line) for line in CALLS.read_text(encoding="utf-8").splitlines()]
    turns = [t["text"] for c in calls for t in c["turns"] if t["speaker"] == "customer"]
    p = models.score_text(turns)
    signals = ("distress", "escalation", "crisis")
    over = {s: int((p[:, i] >= models.thresholds[s]).sum()) for i, s in enumerate(signals)}
    print(f"{len(turns)} calm customer turns; over the operating point: {over}")
    assert over["crisis"] == 0
    assert over["escalation"] <= 0.03 * len(turns)
    assert over["distress"] <= 0.04 * len(turns)


@needs_dev
def test_eval_reports_dev_sets_beside_the_baseline(tmp_path):
    out = tmp_path / "eval.json"
    result = agent_assist("classifiers", "eval", "--dev-data", str(DEV), "--json", str(out), timeout=600)
    assert result.returncode == 0, result.stderr
    assert "MELD dev" in result.stdout and "crisis set" in result.stdout
    report = json.loads(out.read_text())
    dev = report["dev"]
    # floors a little under what shipped (see classifiers/CARD.md), so a regression fails here
    assert dev["DailyDialog dev"]["distress"]["model"]["roc_auc"] >= 0.87
    assert dev["DailyDialog dev"]["escalation"]["model"]["roc_auc"] >= 0.86
    assert dev["MELD dev"]["distress"]["model"]["roc_auc"] >= 0.73
    assert dev["MELD dev"]["escalation"]["model"]["roc_auc"] >= 0.67
    for name in dev:
        for signal, m in dev[name].items():
            assert m["model"]["roc_auc"] >= m["baseline"]["roc_auc"] - 0.02, (name, signal)
    assert report["text_ms_per_utterance"] > 0


# -- the score command ---------------------------------------------------------------------------


def _scores(stdout: str) -> list[list[float]]:
    lines = stdout.strip().splitlines()
    assert lines[0] == "distress,escalation,crisis"
    return [[float(v) for v in line.split(",")] for line in lines[1:]]


def test_score_plain_text_keeps_every_line_in_order(tmp_path):
    path = tmp_path / "utterances.txt"
    path.write_text("I want to speak to a manager right now\n\nmy phone died\nI want to kill myself\n",
                    encoding="utf-8")
    result = agent_assist("classifiers", "score", str(path))
    assert result.returncode == 0, result.stderr
    rows = _scores(result.stdout)
    assert len(rows) == 4
    assert rows[0][1] > 0.5 and rows[3][2] > 0.9 and rows[2][2] < 0.1


def test_score_csv_and_tsv_by_column(tmp_path):
    path = tmp_path / "labelled.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "utterance", "label"])
        w.writerow([1, 'she said, "this is the third time I\'ve called"\nand hung up', "escalation"])
        w.writerow([2, "can I check my balance", "none"])
    result = agent_assist("classifiers", "score", str(path), "--text-column", "utterance")
    assert result.returncode == 0, result.stderr
    rows = _scores(result.stdout)
    assert len(rows) == 2 and rows[0][1] > rows[1][1]
    tsv = tmp_path / "labelled.tsv"
    tsv.write_text("text\tlabel\nmy husband passed away\t1\n", encoding="utf-8")
    assert len(_scores(agent_assist("classifiers", "score", str(tsv)).stdout)) == 1


def test_eval_without_the_dev_sets_says_where_to_point_it(tmp_path):
    result = agent_assist("classifiers", "eval", "--dev-data", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"agent-assist: error: {tmp_path / 'nowhere' / 'meld_dev.csv'}: "
                                     "dev set not found; pass --dev-data DIR")


@pytest.mark.parametrize("case", ["no-column", "missing-file", "not-utf8"])
def test_score_bad_input_is_one_line(tmp_path, case):
    path = tmp_path / "in.csv"
    if case == "no-column":
        path.write_text("a,b\n1,2\n", encoding="utf-8")
    elif case == "not-utf8":
        path.write_bytes(b"text\n\xff\xfe bad\n")
    result = agent_assist("classifiers", "score", str(path))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "agent-assist: error:" in result.stderr


# -- training --------------------------------------------------------------------------------------


def _tiny_data(root: Path) -> Path:
    """A few hundred rows of each source, so a full training run takes seconds."""
    data = root / "data"
    src = REPO / "data"
    for folder in ("goemotions", "davidson", "counsel_chat", "bitext", "contact_centre"):
        (data / folder).mkdir(parents=True)
    (data / "goemotions" / "labels.txt").write_text((src / "goemotions" / "labels.txt").read_text())
    lines = (src / "goemotions" / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (data / "goemotions" / "train.tsv").write_text("".join(lines[:1500]), encoding="utf-8")
    for folder, name, keep in (("davidson", "labeled_data.csv", 600), ("bitext",
                               "Bitext_Sample_Customer_Support_Training_Dataset.csv", 400),
                               ("counsel_chat", "20200325_counsel_chat.csv", 200)):
        with (src / folder / name).open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        with (data / folder / name).open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows[:keep])
    for name in ("utterances.tsv", "crisis.tsv"):
        shutil.copy(src / "contact_centre" / name, data / "contact_centre" / name)
    return data


def test_training_is_reproducible_and_the_onnx_graph_matches_scikit_learn(tmp_path):
    data = _tiny_data(tmp_path)
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        out.mkdir()
        for name in ("encoder.onnx", "tokenizer.json", "acoustic.onnx", "manifest.json"):
            shutil.copy(MODEL_DIR / name, out / name)
        training.train(data, out, voice_dir=None)
        outs.append(out)
    assert (outs[0] / "text.onnx").read_bytes() == (outs[1] / "text.onnx").read_bytes()
    manifest = json.loads((outs[0] / "manifest.json").read_text())
    assert set(manifest["operating_points"]) == {"distress", "escalation", "crisis"}

    # the hand-written ONNX graph computes what scikit-learn's model does
    rows = corpus.load(data)
    texts = [r.text for r in rows]
    mine = Classifiers(outs[0])
    emb = mine.encoder(texts)
    feats, heads = training.fit_text(rows, emb)
    X = feats.transform(texts[:200], emb[:200])
    for i, head in enumerate(heads):
        logits = X @ np.concatenate([head.coef]) + head.intercept
        expected = 1 / (1 + np.exp(-(head.calib_a * logits + head.calib_b)))
        assert np.allclose(mine.score_text(texts[:200])[:, i], expected, atol=2e-4), head.signal


def test_train_without_voice_data_or_previous_model_says_what_to_do(tmp_path):
    data = _tiny_data(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("encoder.onnx", "tokenizer.json"):
        shutil.copy(MODEL_DIR / name, out / name)
    with pytest.raises(Exception, match="--voice-data"):
        training.train(data, out, voice_dir=None)


# -- in the call ---------------------------------------------------------------------------------


def test_sample_call_customer_turns_carry_scores(sample_call, models):
    utterances = [e for e in sample_call.events if isinstance(e, Utterance)]
    customer = [u for u in utterances if u.speaker == Speaker.CUSTOMER]
    assert customer and all(u.scores is not None for u in customer)
    assert all(u.scores is None for u in utterances if u.speaker == Speaker.AGENT)

    def find(words: str) -> Utterance:
        return next(u for u in customer if words in u.text.lower())

    bereaved = find("passed away").scores
    manager = find("manager").scores
    thanks = find("help a lot").scores
    assert bereaved is not None and manager is not None and thanks is not None
    assert bereaved.distress > 0.8 and bereaved.text["distress"] > 0.8
    assert manager.escalation > 0.5
    assert thanks.distress < 0.2 and thanks.escalation < 0.2
    assert all(u.scores.crisis < models.thresholds["crisis"] for u in customer if u.scores)
    # by the second half of the call the voice is judged against the customer's own baseline
    assert all(u.scores.baseline for u in customer[4:] if u.scores and u.scores.acoustic)
    # the escalation trend rises into the complaint and falls once it is resolved
    levels = [u.scores.trend["escalation"] for u in customer if u.scores]
    peak = int(np.argmax(levels))
    assert 0 < peak < len(levels) - 2 and levels[-1] < levels[peak]
    assert any(u.scores.trend["escalation_rise"] > 0.15 for u in customer if u.scores)


@needs_voice
def test_unseen_voices_through_the_pipeline(models, transcriber):
    """Two actors the acoustic model never heard: angry against neutral and calm, in a call."""
    from agent_assist.scoring import evaluation

    report = evaluation.voice(models, VOICE, ["ravdess-10", "ravdess-11"], transcriber, lambda _: None,
                              clips_per_emotion=4)
    print(json.dumps(report))
    assert report["missing"] == 0
    assert report["escalation"]["in_call"] >= 0.9
    assert report["escalation"]["in_call"] > report["escalation"]["text_only"]
    assert report["distress"]["in_call"] > report["distress"]["text_only"]
