"""The shipped classifiers: ONNX only, calibrated, measured on held-out sets, wired into the call."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent_assist import resources
from agent_assist.errors import ModelError
from agent_assist.events import Speaker, Utterance
from agent_assist.scoring import corpus, evaluation, training
from agent_assist.scoring.models import Classifiers
from agent_assist.scoring.turns import Turn
from tests.conftest import DATA, DENIED_DRAMA, HARPER, KIND_SET, REPO
from tests.test_cli import agent_assist

# written in the dev sets' formats; the dev sets themselves are evaluation only and never copied
DEV = DATA / "dev_eval"
VOICES = DATA / "voices"  # synthesised: the acted corpora may not be copied (make_voices.py)
CRISIS_EVAL = REPO / "tests" / "data" / "crisis_eval.tsv"
MOMENTS = REPO / "tests" / "data" / "moments"
# what `classifiers eval` reads besides the dev sets, named as `make eval` names them
EVAL_SETS = ("--data", str(REPO / "data"), "--crisis-set", str(CRISIS_EVAL), "--moments", str(MOMENTS))
MODEL_DIR = resources.models()
# floors a little under what shipped (classifiers/CARD.md: at 0.5, recall 0.885 and 0.841 with parts
# 20-25 and three runs averaged; at recall >= 0.90, precision 0.966 and 0.937), so a regression
# fails; the margin (about four to eight crises) is for another CPU's int8 kernels, which move a few
# scores
CRISIS_RECALL_FLOOR = 0.87
CRISIS_INDIRECT_RECALL_FLOOR = 0.82
CRISIS_RANKED_FLOOR = 0.94  # the target is 0.95 (0.966 here): the floor leaves room for another CPU
CRISIS_INDIRECT_RANKED_FLOOR = 0.91
IN_DOMAIN_AUC_FLOOR = {"distress": 0.95, "escalation": 0.95, "crisis": 0.97}



@pytest.fixture
def models(classifiers: Classifiers) -> Classifiers:
    return classifiers


def score(models: Classifiers, *texts: str) -> np.ndarray:
    return models.score_text(list(texts))


# -- what ships ----------------------------------------------------------------------------------


def test_models_are_onnx_files_and_nothing_else_is_loadable():
    files = {p.name for p in MODEL_DIR.iterdir()}
    shipped_files = {"text.onnx", "acoustic.onnx", "tokenizer.json", "manifest.json", "CARD.md"}
    assert shipped_files <= files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".npy", ".npz", ".pt", ".bin"))]
    import onnx

    for name in ("text.onnx", "acoustic.onnx"):
        onnx.checker.check_model(str(MODEL_DIR / name))
    # the text model is the fine-tuned encoder itself, quantised to int8, its attention and GELU fused
    nodes = [n.op_type for n in onnx.load(str(MODEL_DIR / "text.onnx")).graph.node]
    ops = set(nodes)
    assert {"MatMulInteger", "DynamicQuantizeLinear"} & ops and "LabelEncoder" not in ops
    assert nodes.count("QAttention") == nodes.count("BiasGelu") == 6 and "Erf" not in ops
    assert nodes.count("Softmax") == 1  # the crisis kind's; each layer's is inside its QAttention


def test_the_text_model_runs_without_onnxruntime_s_skip_layer_norm(tmp_path, monkeypatch):
    """`models._session` leaves out onnxruntime's SkipLayerNormalization fusion (a fifth of the text
    model's time on one core). onnxruntime ignores a name it does not know, so the graph it actually
    runs is read back: the residual Add and the LayerNormalization stay apart, and without the
    option onnxruntime fuses them (the name is one it knows)."""
    import onnx
    import onnxruntime as ort

    from agent_assist.scoring import models

    def run_graph(disabled: tuple[str, ...]) -> list[str]:
        out = tmp_path / f"optimised-{len(disabled)}.onnx"
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(out)
        monkeypatch.setattr(ort, "SessionOptions", lambda: options)
        monkeypatch.setattr(models, "DISABLED_FUSIONS", disabled)
        models._session(MODEL_DIR / "text.onnx")
        return [n.op_type for n in onnx.load(str(out)).graph.node]

    ours = run_graph(models.DISABLED_FUSIONS)
    assert "SkipLayerNormalization" not in ours and ours.count("LayerNormalization") == 13
    assert run_graph(()).count("SkipLayerNormalization") == 12


def test_the_live_path_never_imports_scikit_learn_or_pytorch():
    code = (
        "import sys\n"
        "from agent_assist.scoring.scorer import Scorer, VoiceAnalyser\n"
        "from agent_assist.scoring.models import shipped\n"
        "print(shipped().score_text(['I want to speak to a manager']))\n"
        "loaded = [m for m in sys.modules if m.startswith(('sklearn', 'scipy', 'onnx.', 'torch'))]\n"
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


def test_crisis_set_precision_recall_and_kind(models):
    """The crisis set is ours (tests/data/crisis_eval.tsv), kept apart from anything trained on.

    Target: precision >= 0.95 at recall >= 0.90, on the whole set and on its indirect part. What
    shipped is in classifiers/CARD.md; these floors sit a little under it, so a regression fails.
    """
    with CRISIS_EVAL.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    read = models.score_turns([Turn(r["text"]) for r in rows])
    p = read.signals[:, 2]
    y = np.array([r["crisis"] == "1" for r in rows])
    indirect = np.array([r["indirect"] == "1" for r in rows])
    hit = p >= models.thresholds["crisis"]
    precision = (hit & y).sum() / hit.sum()
    recall, recall_indirect = hit[y].mean(), hit[y & indirect].mean()
    print(f"crisis: precision {precision:.3f} recall {recall:.3f} (indirect {recall_indirect:.3f})")
    assert precision >= 0.95
    assert recall >= CRISIS_RECALL_FLOOR and recall_indirect >= CRISIS_INDIRECT_RECALL_FLOOR
    # the target itself, at whatever threshold reaches it: how well crises are ranked above the rest
    ranked = evaluation.precision_at_recall(p, y, 0.90)
    others = indirect | ~y  # the indirect crises against every negative
    ranked_indirect = evaluation.precision_at_recall(p[others], y[others], 0.90)
    print(f"precision at recall >= 0.90: {ranked:.3f} (indirect {ranked_indirect:.3f})")
    assert ranked >= CRISIS_RANKED_FLOOR and ranked_indirect >= CRISIS_INDIRECT_RANKED_FLOOR
    assert hit[y & ~indirect].mean() >= 0.95  # plain words are never missed
    kinds = [read.kind(i) for i in range(len(rows))]
    right = [k == r["kind"] for k, r, h in zip(kinds, rows, hit & y, strict=True) if h]
    assert np.mean(right) >= 0.9


def test_words_that_deny_the_drama_do_not_deny_the_risk(models):
    """A model trained on written denials ("i'm not suicidal, i'm just tired of calling") learnt that
    a "not" near a risk word means safe, and read "ill kill myself im not being dramatic" at 0.10
    (data/contact_centre/next/README.md, parts 22 and 23). These were written for this check, apart
    from every training and evaluation set: a model that reads them under the crisis threshold does
    not ship."""
    crisis = score(models, *DENIED_DRAMA)[:, 2]
    missed = [(t, round(float(c), 2)) for t, c in zip(DENIED_DRAMA, crisis, strict=True)
              if c < models.thresholds["crisis"]]
    assert not missed


def test_each_kind_of_crisis_is_named(models):
    """What routes a crisis card to its playbook and line: family violence is not self-harm."""
    said = {
        "violence": [Turn("He checks my phone every night and if he sees I've called anyone he goes off. "
                          "Please don't send anything to the house."),
                     Turn("no please not the house, he reads all my mail", "Shall I post the new card out?")],
        "self-harm": [Turn("I've been saving up my sleeping tablets. I don't think I'll be needing the "
                           "account much longer.")],
        "danger": [Turn("There's a really strong smell of gas in the kitchen and I've had a headache since "
                        "I walked in.")],
    }
    for kind, turns in said.items():
        read = models.score_turns(turns)
        for i, turn in enumerate(turns):
            assert read.signals[i, 2] >= models.thresholds["crisis"], turn.text
            assert read.kind(i) == kind, (turn.text, read.kinds[i])


def test_the_kind_follows_what_happens_not_who_is_mentioned(models):
    """tests/data/kinds: 150 turns by a writer who never saw the training data, from sectors no
    training writer used: danger to a man the customer calls "he" (chest pain, a fall, a hypo, a
    car stopped on a highway at night), violence by someone who is not "he", and calm turns about
    a man. In the training turns four crises in five that mention a man are family violence, so
    this is where the kind head could learn the pronoun instead of the harm. Floors a little under
    what shipped (classifiers/CARD.md)."""
    from sklearn.metrics import roc_auc_score

    rows = list(corpus.read_turns(KIND_SET))
    read = models.score_turns([Turn(r.text, r.agent_prev, r.customer_prev) for r in rows])
    p, y = read.signals[:, 2], np.array([r.crisis for r in rows])
    assert roc_auc_score(y, p) >= 0.95
    assert (p[y == 1] >= models.thresholds["crisis"]).mean() >= 0.83
    for kind, floor in (("danger", 0.95), ("violence", 0.9)):
        named = [read.kind(i) for i, r in enumerate(rows) if r.kind == kind]
        assert np.mean([k == kind for k in named]) >= floor, (kind, named)


def test_the_held_back_test_turns(models):
    """600 turns written apart from the training data, by other writers, for other sectors."""
    from agent_assist.scoring import evaluation

    report = evaluation.in_domain(evaluation.test_portion(REPO / "tests" / "data" / "moments"), models)
    aucs = {s: m["roc_auc"] for s, m in report["signals"].items()}
    print(aucs, report["kind_accuracy"])
    for signal, floor in IN_DOMAIN_AUC_FLOOR.items():
        assert aucs[signal] >= floor, (signal, aucs[signal])
    # hard negatives (accidents, "killing me", pets, reading out details) stay calm
    hard = report["categories"]["hard-negative"]
    assert hard["crisis_over"] <= 0.02 and hard["escalation_over"] <= 0.1


def test_context_changes_the_reading(models):
    """The same words after a routine question, or after the question that makes them a disclosure."""
    words = "No. No, please, not the house. Can I pick it up from the branch instead?"
    read = models.score_turns([Turn(words, "Would you like it posted or collected?"),
                               Turn(words, "Is it okay to post the new card to your home address?",
                                    "My partner keeps an eye on all the mail.")])
    assert read.signals[1, 2] > read.signals[0, 2] + 0.2
    calm = models.score_turns([Turn("no that's all for me today, thanks",
                                    "Is there anything else I can help you with today?")])
    assert calm.signals[0].max() < 0.3  # the routine question is not the disclosure


def test_context_sharpens_the_words_but_cannot_replace_them(models):
    """From a calm bank call: routine words after an odd agent line. The network alone reads a crisis
    into them; the context may lift the words' own odds at most e^CONTEXT_LIFT."""
    from agent_assist.scoring.models import CONTEXT_LIFT

    turn = Turn("the amount is one hundred eleven dollars",
                "i don't know if you just said it but if he said that i didn't get it "
                "uh what is it the amount again",
                "[unintelligible] on just a second")
    assert models.text([turn]).signals[0, 2] > 0.5  # what the cap is for
    alone = models.score_text([turn.text])[0]
    read = models.score_turns([turn]).signals[0]
    assert read[2] < 0.5 <= models.thresholds["crisis"]  # no crisis card (0.05 before part 11, now 0.27)
    lift = np.log(read / (1 - read)) - np.log(alone / (1 - alone))
    assert np.all(lift <= CONTEXT_LIFT + 1e-3)
    words = "No. No, please, not the house. Can I pick it up from the branch instead?"
    disclosure = models.score_turns([Turn(words, "Is it okay to post the new card to your home address?",
                                          "My partner keeps an eye on all the mail.")])
    assert disclosure.signals[0, 2] >= 0.5  # still a disclosure (about 0.84; the network alone 0.96)


def test_calm_calls_rarely_raise_anything(models):
    """Harper Valley's scripted bank calls: any alert there is a false alarm."""
    calls = [json.loads(line) for line in HARPER.read_text(encoding="utf-8").splitlines()]
    turns = [t["text"] for c in calls for t in c["turns"] if t["speaker"] == "customer"]
    p = models.score_text(turns)
    signals = ("distress", "escalation", "crisis")
    over = {s: int((p[:, i] >= models.thresholds[s]).sum()) for i, s in enumerate(signals)}
    print(f"{len(turns)} calm customer turns; over the operating point: {over}")
    assert over["crisis"] == 0
    assert over["escalation"] <= 0.03 * len(turns)
    assert over["distress"] <= 0.04 * len(turns)


def _slice(rows_from: Path, to: Path, every: int) -> Path:
    """Every `every`-th line of a file (its header kept), or of each file of a folder."""
    if rows_from.is_dir():
        to.mkdir()
        for path in rows_from.iterdir():
            _slice(path, to / path.name, every)
        return to
    lines = rows_from.read_text(encoding="utf-8").splitlines(keepends=True)
    head = lines[:1] if rows_from.suffix == ".tsv" else []
    to.write_text("".join(head + lines[len(head)::every]), encoding="utf-8")
    return to


def test_eval_reports_each_dev_set_beside_the_baseline_and_the_calm_calls(tmp_path):
    """`classifiers eval` end to end: every dev set, each line alone and in its dialogue's context,
    beside the baseline; the crisis set, the held-back turns and the calm calls. The dev sets here
    are ours, written in the four sets' formats (tests/data/dev_eval/README.md); the real ones are
    evaluation only, never copied, and measured by the same command (classifiers/CARD.md). The
    crisis set and the held-back turns are measured in full above; a tenth of each will do here,
    and the baseline is fitted on a few hundred rows."""
    out = tmp_path / "eval.json"
    result = agent_assist("classifiers", "eval", "--data", str(_tiny_data(tmp_path)), "--dev-data", str(DEV),
                          "--crisis-set", str(_slice(CRISIS_EVAL, tmp_path / "crisis.tsv", 10)),
                          "--moments", str(_slice(REPO / "tests" / "data" / "moments", tmp_path / "m", 10)),
                          "--calls", str(HARPER), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "MELD dev" in result.stdout and "crisis set" in result.stdout
    report = json.loads(out.read_text())
    dev = report["dev"]
    assert set(dev) == {"MELD dev", "EmoryNLP dev", "DailyDialog dev", "Dreaddit"}
    assert set(dev["Dreaddit"]) == {"distress"} and set(dev["MELD dev"]) == {"distress", "escalation"}
    for name, signals in dev.items():
        for signal, m in signals.items():
            # labelled, as the real sets are, by the speaker's emotion ("Oh, Sam. Come here." is
            # sadness): 0.81-1.0 when written; the baseline, fitted on a few hundred rows here,
            # need only be measured
            assert m["model"]["roc_auc"] >= 0.75, (name, signal, m["model"])
            assert 0 <= m["baseline"]["roc_auc"] <= 1 and m["model"]["rows"] == m["baseline"]["rows"]
            assert ("in_context" in m) == (name != "Dreaddit")  # Dreaddit's posts have no dialogue
    assert report["crisis"]["rows"] > 40 and report["in_domain"]["rows"] > 50
    # the crisis target as the issue states it, read off the scores at whatever threshold reaches it
    crisis = report["crisis"]
    assert crisis["precision"] <= crisis["precision_at_recall_0.90"] or crisis["recall"] < 0.90
    assert 0 < crisis["indirect"]["precision_at_recall_0.90"] <= 1
    assert "best precision at recall >= 0.90" in result.stdout
    calm = report["calm_calls"]
    # none on the AVX2 machines of the earlier runs; on an AVX-512 VNNI one (onnxruntime's int8
    # kernels differ by CPU) one closing line read after "is there anything else": "no that's gonna
    # be all for me today", 0.58 (the crisis cards' threshold is 0.7: no calm call gets one,
    # test_rules_replay.py)
    assert calm["calls"] == 35 and calm["crisis"]["turns_over"] <= 1, calm["crisis"]
    assert report["text_ms_per_utterance"] > 0


def test_precision_at_recall_is_the_best_precision_of_any_threshold_that_reaches_the_recall():
    y = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 1], bool)
    p = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.3, 0.2, 0.1])
    # recall >= 0.5 first at 0.7 (3 of 6): 3 of 4 right; recall 1.0 only at 0.1: 6 of 10
    assert evaluation.precision_at_recall(p, y, 0.5) == 0.75
    assert evaluation.precision_at_recall(p, y, 1.0) == 0.6
    # a threshold with lower recall and better precision does not count
    assert evaluation.precision_at_recall(p, y, 0.6) == round(4 / 6, 3)


# -- the score command ---------------------------------------------------------------------------


def _scores(stdout: str) -> list[list[float]]:
    lines = stdout.strip().split("\n")
    assert lines[0] == "distress,escalation,crisis,kind"
    rows = [line.split(",") for line in lines[1:]]
    assert all(row[3] in ("self-harm", "violence", "danger") for row in rows)
    return [[float(v) for v in row[:3]] for row in rows]


def test_score_keeps_rows_aligned_whatever_the_characters_and_reads_context(tmp_path):
    """Line separators inside a field or a line (U+2028, NEL, form feed, file separator) and a quoted
    line break never add or lose a row; context columns change the reading, not the row count."""
    odd = ["one\u2028two", "three\x85four", "five\x0csix", "seven\x1ceight", "nine"]
    path = tmp_path / "odd.txt"
    path.write_text("\n".join(odd) + "\n", encoding="utf-8")
    assert len(_scores(agent_assist("classifiers", "score", str(path)).stdout)) == len(odd)
    table = tmp_path / "turns.csv"
    with table.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "agent", "before"])
        w.writerow(["No. No, please, not the house. I'll pick it up.",
                    "Is it okay to post the new card to your home address?", "It's in my name."])
        w.writerow(["line one\u2028still the same row\nand a quoted break", "", ""])
        w.writerow(["No. No, please, not the house. I'll pick it up.", "", ""])
    result = agent_assist("classifiers", "score", str(table), "--agent-column", "agent",
                          "--customer-column", "before")
    assert result.returncode == 0, result.stderr
    rows = _scores(result.stdout)
    assert len(rows) == 3
    assert rows[0] != rows[2], "the same words read differently after the agent's question"


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
    result = agent_assist("classifiers", "eval", *EVAL_SETS, "--dev-data", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"agent-assist: error: {tmp_path / 'nowhere' / 'meld_dev.csv'}: "
                                     "dev set not found; pass --dev-data DIR")


@pytest.mark.parametrize(("command", "option"), [("eval", "--dev-data"), ("train", "--data")])
def test_data_folders_are_named_not_guessed_from_a_checkout(command, option):
    """An installed wheel has no checkout beside it: eval and train name their data or stop at once."""
    given = {"eval": EVAL_SETS, "train": ("-o", str(REPO / "nowhere"))}[command]
    result = agent_assist("classifiers", command, *given)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"Error: Missing option '{option}'."


@pytest.mark.parametrize("case", ["no-column", "missing-file", "not-utf8", "fifo", "unclosed-quote",
                                  "huge-field"])
def test_score_bad_input_is_one_line(tmp_path, case):
    """Never a hang (a FIFO nobody writes to), never rows shifted (a quote never closed would swallow
    the rows after it), never an internal error (a 17 MB field): one line, with the file's line."""
    path = tmp_path / "in.csv"
    if case == "no-column":
        path.write_text("a,b\n1,2\n", encoding="utf-8")
    elif case == "not-utf8":
        path.write_bytes(b"text\n\xff\xfe bad\n")
    elif case == "fifo":
        os.mkfifo(path)
    elif case == "unclosed-quote":
        path.write_text('text\nfirst\n"second\nthird\n', encoding="utf-8")
    elif case == "huge-field":
        path.write_text("text\n" + "a" * 17_000_000 + "\n", encoding="utf-8")
    result = agent_assist("classifiers", "score", str(path))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "agent-assist: error:" in result.stderr
    where = {"not-utf8": ":2: ", "unclosed-quote": ":3: ", "huge-field": ":2: ", "fifo": "is a FIFO"}
    assert where.get(case, "") in result.stderr


# -- training --------------------------------------------------------------------------------------


def _tiny_data(root: Path) -> Path:
    """A few hundred rows of each source, so a full training run takes seconds."""
    data = root / "data"
    src = REPO / "data"
    for folder in ("goemotions", "davidson", "counsel_chat", "bitext", "contact_centre/turns"):
        (data / folder).mkdir(parents=True)
    (data / "goemotions" / "labels.txt").write_text((src / "goemotions" / "labels.txt").read_text())
    lines = (src / "goemotions" / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    (data / "goemotions" / "train.tsv").write_text("".join(lines[:300]), encoding="utf-8")
    for folder, name, keep in (("davidson", "labeled_data.csv", 200), ("bitext",
                               "Bitext_Sample_Customer_Support_Training_Dataset.csv", 100),
                               ("counsel_chat", "20200325_counsel_chat.csv", 100)):
        with (src / folder / name).open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        with (data / folder / name).open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows[:keep])
    for name in ("utterances.tsv", "crisis.tsv"):
        shutil.copy(src / "contact_centre" / name, data / "contact_centre" / name)
    for path in (src / "contact_centre" / "turns").glob("*.jsonl"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        (data / "contact_centre" / "turns" / path.name).write_text("".join(lines[::16]), encoding="utf-8")
    return data


TINY = {"goemotions": 150, "davidson": 50, "bitext": 50, "counsel_chat": 50}


def test_training_is_reproducible_to_the_byte(tmp_path):
    from agent_assist.scoring.finetune import TrainOptions

    data = _tiny_data(tmp_path)
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        out.mkdir()
        for name in ("acoustic.onnx", "manifest.json"):
            shutil.copy(MODEL_DIR / name, out / name)
        training.train(data, out, voice_dir=None, options=TrainOptions(max_steps=2, batch_size=8),
                       sample=TINY)
        outs.append(out)
    assert (outs[0] / "text.onnx").read_bytes() == (outs[1] / "text.onnx").read_bytes()
    manifest = json.loads((outs[0] / "manifest.json").read_text())
    assert set(manifest["operating_points"]) == {"distress", "escalation", "crisis"}
    assert manifest["operating_points"]["crisis"] <= 0.5
    runs = TrainOptions().runs  # several runs, averaged, as the shipped model was built
    assert runs > 1 and len(manifest["text"]["borrowed_context_rows"]) == runs
    held = manifest["text"]["held_out_rows"]
    assert held["contact_centre_turns"] >= 30 and held["goemotions"] == round(TINY["goemotions"] * 0.15)
    mine = Classifiers(outs[0])  # and it loads and scores as the shipped one does
    scores = mine.score_turns([Turn("no please not the house", "Shall I post it to your home address?")])
    assert scores.signals.shape == (1, 3) and scores.kinds.shape == (1, 3)


@pytest.mark.models  # fine-tunes the encoder a few steps (PyTorch)
def test_the_onnx_graph_computes_the_fine_tuned_network(tmp_path):
    """The hand-written graph, in float, gives PyTorch's logits, fused too; quantised, nearly the
    same, and the fused int8 graph the unfused one's exactly."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from agent_assist.scoring import base, finetune, onnx_graphs
    from agent_assist.scoring.models import _session
    from agent_assist.scoring.turns import TurnTokenizer

    rows = [r for r in corpus.load(_tiny_data(tmp_path)) if r.source == "contact_centre_turns"][:64]
    tokenizer = TurnTokenizer(MODEL_DIR / "tokenizer.json")
    data = training.encode_rows(tokenizer, rows)
    weights = finetune.fit(base.weights(), data, finetune.TrainOptions(max_steps=3, batch_size=8),
                           lambda _: None)
    torch_logits, torch_kinds = finetune.logits(weights, data)
    float_path, fused_path = tmp_path / "float.onnx", tmp_path / "fused.onnx"
    int8_path, int8_fused_path = tmp_path / "int8.onnx", tmp_path / "int8_fused.onnx"
    model = onnx_graphs.turn_model(weights, calib_a=np.ones(3), calib_b=np.zeros(3), doc="")
    onnx.save(model, float_path)
    onnx.save(onnx_graphs.fused(model), fused_path)
    quantize_dynamic(float_path, int8_path, weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gather"], nodes_to_exclude=list(onnx_graphs.HEAD_NODES))
    training.export_text(weights, int8_fused_path, np.ones(3), np.zeros(3))  # fused, then int8
    assert "QAttention" in {n.op_type for n in onnx.load(str(int8_fused_path)).graph.node}
    checks = ((float_path, 1e-3), (fused_path, 1e-3), (int8_path, 0.35), (int8_fused_path, 0.35))
    outputs: dict[str, list[np.ndarray]] = {path.name: [] for path, _ in checks}
    for path, tolerance in checks:
        session = _session(path)
        for row in range(len(data)):
            ids, types, mask = data.padded([row])
            logits, kinds = session.run(["logits", "kind"], {"input_ids": ids, "token_type_ids": types,
                                                             "attention_mask": mask})
            assert np.allclose(logits[0], torch_logits[row], atol=tolerance), (path.name, row)
            softmax = np.exp(torch_kinds[row]) / np.exp(torch_kinds[row]).sum()
            assert np.allclose(kinds[0], softmax, atol=tolerance / 5), (path.name, row)
            outputs[path.name].append(logits[0])
    # fusing changes no arithmetic: quantised, the fused graph gives the unfused one's logits
    assert np.array_equal(np.array(outputs["int8.onnx"]), np.array(outputs["int8_fused.onnx"]))


def test_the_shipped_model_was_built_as_classifiers_train_builds_it():
    """`classifiers train` with its defaults rebuilds the shipped text model: the manifest records the
    options it was fine-tuned with, and they are today's defaults (runs and seed included)."""
    import dataclasses

    from agent_assist.scoring.finetune import TrainOptions

    manifest = json.loads((MODEL_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["text"]["fine_tuning"] == dataclasses.asdict(TrainOptions(seed=training.SEED))
    assert manifest["seed"] == training.SEED


@pytest.mark.models  # fine-tunes the encoder a few steps (PyTorch)
def test_runs_average_into_one_network(tmp_path):
    """Two runs' weights average element by element into a network that scores between them."""
    from agent_assist.scoring import base, finetune
    from agent_assist.scoring.turns import TurnTokenizer

    rows = [r for r in corpus.load(_tiny_data(tmp_path)) if r.source == "contact_centre_turns"][:48]
    data = training.encode_rows(TurnTokenizer(MODEL_DIR / "tokenizer.json"), rows)
    a, b = (finetune.fit(base.weights(), data, finetune.TrainOptions(max_steps=2, batch_size=8, seed=seed),
                         lambda _: None) for seed in (1, 2))
    soup = finetune.average([a, b])
    assert set(soup) == set(a)
    assert not np.array_equal(a["signals.weight"], b["signals.weight"])  # the seeds did differ
    for name in soup:
        assert soup[name].dtype == a[name].dtype
        assert np.allclose(soup[name], (a[name] + b[name]) / 2, atol=1e-7), name
    logits = [finetune.logits(w, data)[0] for w in (a, b, soup)]
    assert not np.allclose(logits[2], logits[0]) and not np.allclose(logits[2], logits[1])
    with pytest.raises(ValueError, match="cannot be averaged"):
        finetune.average([{"position_ids": np.arange(3)}, {"position_ids": np.arange(1, 4)}])


def test_train_without_voice_data_or_previous_model_says_what_to_do(tmp_path):
    from agent_assist.scoring.finetune import TrainOptions

    data = _tiny_data(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Exception, match="--voice-data"):
        training.train(data, out, voice_dir=None, options=TrainOptions(max_steps=1, batch_size=8),
                       sample=TINY)


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
    # no crisis: every turn under the 0.7 the default pack's crisis cards ask (classifiers/CARD.md);
    # two read between the model's 0.5 and that: the opening ("my power is going to be disconnected
    # and I don't know what to do") as danger, and the demand for a manager as violence (a limit the
    # card names: anger can read as a threat)
    assert all(u.scores.crisis < 0.7 for u in customer if u.scores)
    allowed = {(find("disconnected").utterance_id, "danger"), (find("manager").utterance_id, "violence")}
    over = {(u.utterance_id, u.scores.kind) for u in customer
            if u.scores and u.scores.crisis >= models.thresholds["crisis"]}
    assert over <= allowed, over
    # by the second half of the call the voice is judged against the customer's own baseline
    assert all(u.scores.baseline for u in customer[4:] if u.scores and u.scores.acoustic)
    # the escalation trend rises into the complaint and falls once it is resolved
    levels = [u.scores.trend["escalation"] for u in customer if u.scores]
    peak = int(np.argmax(levels))
    assert 0 < peak < len(levels) - 2 and levels[-1] < levels[peak]
    assert any(u.scores.trend["escalation_rise"] > 0.15 for u in customer if u.scores)


def test_a_voice_never_heard_through_the_pipeline(models, call_models):
    """A voice the acoustic model never heard (Piper's, tests/data/voices: the acted corpora may not
    be copied), saying the same words neutral, calm, angry, sad and fearful, one clip after another
    in a call that opens with two neutral clips. The voice must carry what the words cannot.

    On the acted corpora's unseen actors (`classifiers eval --voice-data`) angry against calm is
    ROC-AUC 0.97 and sad or fearful against calm 0.81-0.90 (classifiers/CARD.md); a synthetic voice's
    sadness is not read (its sad clips score as its neutral ones), so only anger and fear are asked
    of it here."""
    from agent_assist.scoring import evaluation

    report = evaluation.voice(models, VOICES, ["piper"], call_models, lambda _: None, clips_per_emotion=2)
    print(json.dumps(report))
    results = report["results"]
    assert report["missing"] == 0 and len(results) == 10
    assert all(r["voice"] is not None and r["baseline"] for r in results)  # judged against the opening

    def voice(emotions: tuple[str, ...], head: str) -> list[float]:
        return [r["voice"][head] for r in results if r["emotion"] in emotions]

    calm = ("neutral", "calm")
    assert min(voice(("angry",), "angry")) > max(voice(calm, "angry")) + 0.3
    assert min(voice(("fearful",), "fearful")) > max(voice(calm, "fearful")) + 0.3
    # the same words: in the call, the angry voice raises escalation over what the words alone say
    angry = [r for r in results if r["emotion"] == "angry"]
    assert all(r["in_call"]["escalation"] > 1.5 * r["text_only"]["escalation"] for r in angry)
    assert report["escalation"]["in_call"] > report["escalation"]["text_only"]


def _initialisers(path: Path) -> dict[str, np.ndarray]:
    """An ONNX file's initialisers by name, as numpy arrays."""
    import onnx
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def test_an_exported_text_model_exports_again_with_the_same_weights_and_bytes(tmp_path):
    """bench/reexport_text.py (how a model exported before the fusion takes it): the weights read
    back from a file export again and read back from the new file to the bit, and the file comes
    out byte for byte (it refuses otherwise). The shipped file's weights, exported fused, give its
    int8 weights exactly: only a quantisation scale may move, by its last bit (int8 → float → int8
    recomputes it; with the averaged model of 2026-12-02 the word embeddings' scale does), which is
    why the shipped file itself is exported once before the round trip."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reexport_text", REPO / "bench" / "reexport_text.py")
    assert spec is not None and spec.loader is not None
    reexport_text = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reexport_text)
    weights, calib_a, calib_b, _ = reexport_text.read_back(MODEL_DIR / "text.onnx")
    once = tmp_path / "once.onnx"
    training.export_text(weights, once, calib_a, calib_b)
    shipped, exported = _initialisers(MODEL_DIR / "text.onnx"), _initialisers(once)
    assert shipped.keys() == exported.keys()
    for name, value in shipped.items():
        if name.endswith("_scale"):
            assert np.allclose(value, exported[name], rtol=1e-6, atol=0), name
        else:
            assert np.array_equal(value, exported[name]), name
    ops = reexport_text.reexport(once, tmp_path / "text.onnx")
    assert ops["QAttention"] == ops["BiasGelu"] == 6
    assert (tmp_path / "text.onnx").read_bytes() == once.read_bytes()
    weights, _, _, doc = reexport_text.read_back(tmp_path / "text.onnx")
    assert weights["encoder.layer.5.attention.self.value.weight"].shape == (384, 384) and doc
    assert len([k for k in weights if k.startswith("encoder.layer.")]) == 6 * 16


@pytest.mark.models
def test_a_trained_text_model_is_calibrated_again_as_it_now_runs(tmp_path):
    """bench/recalibrate_text.py (after `models.DISABLED_FUSIONS` changed how the model runs): the
    calibration is fitted again on the training's own held-out rows and written into the file and
    the manifest, and nothing else in the file changes. Data whose held-out rows are not the ones
    the model was trained beside is refused before anything is written."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("recalibrate_text", REPO / "bench" / "recalibrate_text.py")
    assert spec is not None and spec.loader is not None
    recalibrate_text = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recalibrate_text)
    models = tmp_path / "classifiers"
    shutil.copytree(MODEL_DIR, models)

    shipped = _initialisers(models / "text.onnx")
    training.set_calibration(models / "text.onnx", np.ones(3), np.zeros(3))  # to be fitted again

    fewer = tmp_path / "data"
    shutil.copytree(REPO / "data", fewer, ignore=shutil.ignore_patterns("samples"))
    calm = fewer / "contact_centre" / "turns" / "calm_routine.jsonl"
    half = calm.read_text(encoding="utf-8").splitlines(keepends=True)[::2]
    calm.write_text("".join(half), encoding="utf-8")
    with pytest.raises(SystemExit, match="not the ones the model was trained"):
        recalibrate_text.recalibrate(models, fewer)

    manifest = recalibrate_text.recalibrate(models, REPO / "data")
    after = _initialisers(models / "text.onnx")
    assert after.keys() == shipped.keys()
    changed = {k for k in shipped if not np.array_equal(shipped[k], after[k])}
    assert changed <= {"calib_a", "calib_b"}  # none on the CPU it was calibrated on: the same bytes
    # on another CPU's int8 kernels the fit moves a little, never far (here: 0.03-0.06 in log-odds)
    assert np.allclose(after["calib_a"], shipped["calib_a"], atol=0.05)
    assert np.allclose(after["calib_b"], shipped["calib_b"], atol=0.15)
    assert np.allclose(after["calib_a"], manifest["text"]["calibration"]["a"], atol=1e-6)
    assert np.allclose(after["calib_b"], manifest["text"]["calibration"]["b"], atol=1e-6)
    assert set(manifest["operating_points"]) == {"distress", "escalation", "crisis"}
    assert json.loads((models / "manifest.json").read_text(encoding="utf-8")) == manifest


def _voice_folder(root: Path) -> Path:
    """The synthesised clips of tests/data/voices under four speakers' names, so a voice fit has
    actors to fit on, held-out actors and the other corpus's speaker to measure on (real audio,
    made-up speakers: for how `train --voice-only` works, not for what it learns)."""
    with (VOICES / "manifest.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    folder = root / "voices"
    folder.mkdir()
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        for speaker in ("ravdess-01", "ravdess-02", training.HELD_OUT_SPEAKERS[0],
                        training.OTHER_CORPUS_SPEAKER):
            for row in rows:
                out.writerow({**row, "file": str(VOICES / row["file"]), "speaker": speaker})
    return folder


def test_voice_only_fits_the_acoustic_model_again_and_keeps_the_text_model(tmp_path):
    from agent_assist.scoring import acoustic

    out = tmp_path / "models"
    out.mkdir()
    for name in ("text.onnx", "acoustic.onnx", "tokenizer.json", "manifest.json"):
        shutil.copy(MODEL_DIR / name, out / name)
    # a model fitted when fewer features were compared with the speaker's baseline is refused,
    # and the message says how to fit it again
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["acoustic"]["relative"] = list(acoustic.ANGER_RELATIVE)
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="--voice-only"):
        Classifiers(out)

    ran = agent_assist("classifiers", "train", "--voice-only", "-o", str(out))
    assert ran.returncode != 0 and "pass --voice-data" in ran.stderr
    ran = agent_assist("classifiers", "train", "--voice-only", "-o", str(tmp_path / "empty"),
                       "--voice-data", str(VOICES))
    assert ran.returncode != 0 and "no text model to keep" in ran.stderr
    ran = agent_assist("classifiers", "train", "-o", str(out))
    assert ran.returncode != 0 and "--data" in ran.stderr

    ran = agent_assist("classifiers", "train", "--voice-only", "-o", str(out),
                       "--voice-data", str(_voice_folder(tmp_path)))
    assert ran.returncode == 0, ran.stderr
    assert (out / "text.onnx").read_bytes() == (MODEL_DIR / "text.onnx").read_bytes()
    after = json.loads((out / "manifest.json").read_text())
    shipped_manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    for key in ("text", "operating_points", "seed", "version"):
        assert after[key] == shipped_manifest[key]
    assert after["acoustic"]["relative"] == list(acoustic.RELATIVE)
    assert set(after["acoustic"]["metrics"]["sad"]) >= {"roc_auc_with_baseline_phone",
                                                       "roc_auc_other_corpus_phone"}
    mine = Classifiers(out)  # loads, and its voice heads take today's inputs
    feats = acoustic.features(training.decode(VOICES / "piper-sad-1.ogg"))
    probabilities = mine.score_voice(feats, acoustic.relative(feats, feats), np.ones(1, np.float32))
    assert probabilities.shape == (1, 3) and np.all((probabilities > 0) & (probabilities < 1))


def test_each_voice_head_reads_only_its_inputs():
    """The shipped acoustic model weighs nothing a head is meant to do without: the sad head no
    cepstrum, the angry head no change from baseline but its six (`training.VOICE_WITHOUT`)."""
    from agent_assist.scoring import acoustic
    from agent_assist.scoring.models import VOICE_HEADS

    w = _initialisers(MODEL_DIR / "acoustic.onnx")["w"]
    names = acoustic.input_names()
    assert w.shape == (len(names), len(VOICE_HEADS))
    for head, without in training.VOICE_WITHOUT.items():
        column = w[:, VOICE_HEADS.index(head)]
        assert without and all(column[names.index(n)] == 0.0 for n in without), head
        assert np.count_nonzero(column) == len(names) - len(without), head
    assert {f"rel_{n}" for n in acoustic.ANGER_RELATIVE} <= set(names)


def test_the_shipped_voice_model_reads_voices_it_never_heard():
    """Floors on what the acoustic model's fit measured on speakers it was not fitted on (the
    RAVDESS actors 9-12, against their own baseline, on an 8 kHz μ-law line; and the one speaker of
    the other corpus, TESS), so a model fitted worse is not shipped unnoticed."""
    metrics = json.loads((MODEL_DIR / "manifest.json").read_text())["acoustic"]["metrics"]
    assert metrics["escalation"]["roc_auc_with_baseline_phone"] >= 0.95
    assert metrics["fearful"]["roc_auc_with_baseline_phone"] >= 0.90
    assert metrics["sad"]["roc_auc_with_baseline_phone"] >= 0.78
    assert metrics["sad"]["roc_auc_other_corpus_phone"] >= 0.88
    assert metrics["fearful"]["roc_auc_other_corpus_phone"] >= 0.95
