"""A customer's turn with its context, as word pieces for the text model (training and live alike).

The text model reads a BERT pair: the call's context first (the customer's previous turn, then the
agent's words just before this turn), the turn itself second:

    [CLS] customer_prev [SEP] agent_prev [SEP] turn [SEP]
     └──────────── token type 0 ────────────┘ └ type 1 ┘

Context is cut from the front, so the agent's last words are kept, to `MAX_CONTEXT` pieces. A turn
longer than `MAX_TURN` pieces (about 90 words, 35 s of speech) is read in overlapping windows of
that size by the live model, each with the same context; training reads its first window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent_assist.errors import ModelError

SIGNALS = ("distress", "escalation", "crisis")
CRISIS_KINDS = ("self-harm", "violence", "danger")
MAX_TURN = 128
MAX_CONTEXT = 32
WINDOW_STRIDE = 96  # a long turn's windows overlap by 32 pieces, so no sentence falls between two
#: At most this many windows are read (about 1,500 word pieces, ten minutes of speech): no turn is
#: that long, and a pasted document must not cost minutes.
MAX_WINDOWS = 16

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u201c": '"', "\u201d": '"'})


@dataclass(frozen=True)
class Turn:
    """What the text model reads: the customer's words, and what came just before them."""

    text: str
    agent_prev: str = ""
    customer_prev: str = ""


@dataclass
class Encoded:
    """Word-piece sequences (one per row) and, for training, their labels."""

    ids: list[np.ndarray]
    types: list[np.ndarray]
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int8))
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    weight: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.ids], np.int64)

    def padded(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, token types, attention mask) of `rows`, padded to the longest of them."""
        rows = list(rows)
        width = max(len(self.ids[r]) for r in rows)
        ids = np.zeros((len(rows), width), np.int64)
        types = np.zeros((len(rows), width), np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, r in enumerate(rows):
            n = len(self.ids[r])
            ids[i, :n], types[i, :n], mask[i, :n] = self.ids[r], self.types[r], 1
        return ids, types, mask

    def subset(self, rows: np.ndarray) -> Encoded:
        return Encoded(
            [self.ids[r] for r in rows],
            [self.types[r] for r in rows],
            self.labels[rows] if len(self.labels) else self.labels,
            self.kind[rows] if len(self.kind) else self.kind,
            self.weight[rows] if len(self.weight) else self.weight,
        )


class TurnTokenizer:
    """The encoder's word-piece tokenizer (`tokenizer.json`), assembling turns with their context."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        if not path.is_file():
            raise ModelError(f"{path}: tokenizer missing; reinstall agent-assist")
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exceptions
            raise ModelError(f"{path}: cannot load the tokenizer ({exc})") from exc
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        cls, sep = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        if cls is None or sep is None:
            raise ModelError(f"{path}: not a BERT word-piece tokenizer")
        self.cls: int = cls
        self.sep: int = sep

    def pieces(self, texts: Sequence[str]) -> list[list[int]]:
        """Word pieces of each text, without special tokens."""
        clean = [" ".join(t.translate(_QUOTES).split()) for t in texts]
        return [e.ids for e in self.tokenizer.encode_batch(clean, add_special_tokens=False)]

    def context(self, turn: Turn, cache: dict[str, list[int]] | None = None) -> list[int]:
        """[CLS] customer_prev [SEP] agent_prev [SEP], cut from the front to fit."""
        parts = []
        for text in (turn.customer_prev, turn.agent_prev):
            if text.strip():
                pieces = cache.get(text) if cache is not None else None
                if pieces is None:
                    pieces = self.pieces([text])[0]
                    if cache is not None:
                        cache[text] = pieces
                parts.append(pieces)
        body: list[int] = []
        for part in parts:
            body += [*part, self.sep]
        if not body:
            body = [self.sep]
        return [self.cls, *body[-MAX_CONTEXT:]]

    def assemble(self, context: list[int], turn_pieces: list[int]) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array([*context, *turn_pieces, self.sep], np.int64)
        types = np.zeros(len(ids), np.int64)
        types[len(context):] = 1
        return ids, types

    def windows(self, turn: Turn) -> list[tuple[np.ndarray, np.ndarray]]:
        """The turn as one sequence, or a long turn as overlapping windows with the same context."""
        context = self.context(turn)
        pieces = self.pieces([turn.text])[0]
        starts = list(range(0, max(1, len(pieces) - MAX_TURN + WINDOW_STRIDE), WINDOW_STRIDE))
        return [self.assemble(context, pieces[lo : lo + MAX_TURN]) for lo in starts[:MAX_WINDOWS]]

    def encode(self, turns: Sequence[Turn]) -> Encoded:
        """Each turn's first window (training and batch scoring of short turns)."""
        cache: dict[str, list[int]] = {}
        pieces = self.pieces([t.text for t in turns])
        ids, types = [], []
        for turn, own in zip(turns, pieces, strict=True):
            i, ty = self.assemble(self.context(turn, cache), own[:MAX_TURN])
            ids.append(i)
            types.append(ty)
        return Encoded(ids, types)
