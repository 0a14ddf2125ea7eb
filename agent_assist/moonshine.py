"""Moonshine tiny-en run with plain onnxruntime: the encoder, the merged decoder with its KV cache,
greedy decoding, and the tokenizer, all read from the files that `moonshine-voice==0.1.0` ships.

Why Moonshine: Whisper always encodes a 30 s window, so a one-word turn costs as much as a 25 s
one. Moonshine's encoder takes the audio as it is, so a decode costs what the utterance costs
(a 2 s turn: about 0.05 s of CPU, against 0.4 s for Whisper's encoder alone). On 855 words it
scored 3.8 % WER against tiny.en's 3.7 %, and 5.2 % against 6.0 % on telephone-band audio
(`../shared/notes/speech-models.md`).

Only the package's files are read: `import moonshine_voice` would load its own 42 MB native
library, which the project neither needs nor trusts on the real-time path. The version is pinned
exactly because later versions no longer carry the weights.

A `MoonshineModel` holds two onnxruntime sessions and the token table, and no state of a decode:
`decode()` keeps its KV cache in local variables, so any number of calls may share one model and
decode from several threads at once.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agent_assist.errors import ModelError
from agent_assist.speech import Abandoned, Heard, HeardWord, clean_text

if TYPE_CHECKING:
    from agent_assist.transcriber import TranscriberOptions

log = logging.getLogger(__name__)

PACKAGE = "moonshine_voice"  # moonshine-voice==0.1.0: later versions dropped the weights
FOLDER = "assets/tiny-en"
ENCODER, DECODER, TOKENIZER = "encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"
BOS, EOS = 1, 2
FIRST_BYTE, LAST_BYTE = 3, 258  # ids 3-258 are the raw bytes 0-255 (byte fallback)
SPACE = "\u2581".encode()  # SentencePiece's word boundary, "▁"
QUOTE = "\u201c".encode()  # an opening quotation mark, as typeset
LAYERS, HEADS, HEAD_DIM = 6, 8, 36
RATE = 16000
# Tokens per second of audio before a decode is taken to be looping. English speech runs at about
# 3-4 tokens per second in this vocabulary; Moonshine's own reference code stops at 6.5 per second.
MAX_TOKENS_PER_S = 6.5
EXTRA_TOKENS = 4  # plus this many, so a short word in a short clip is never cut
# The encoder's strided convolutions need 895 samples to give one frame; shorter audio (never a
# segment the VAD sends, which holds at least 0.25 s of speech) is zero padded to 0.1 s.
MIN_SAMPLES = 1600


def assets_folder() -> Path:
    """The folder of tiny-en's files inside the installed moonshine-voice, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        folder = Path(location) / FOLDER
        if all((folder / name).is_file() for name in (ENCODER, DECODER, TOKENIZER)):
            return folder
    raise ModelError("the Moonshine tiny-en model is missing: pip install \"agent-assist[full]\" (it "
                     "brings moonshine-voice==0.1.0; later versions carry no weights), or pass "
                     "--model whisper-tiny.en")


def read_tokens(path: Path) -> list[bytes]:
    """tokenizer.bin: for each token id in turn, a varint byte length and then the token's bytes."""
    data = path.read_bytes()
    tokens: list[bytes] = []
    i = 0
    while i < len(data):
        length = shift = 0
        while True:
            byte = data[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        tokens.append(data[i : i + length])
        i += length
    for token_id in range(FIRST_BYTE, LAST_BYTE + 1):  # the table stores them as themselves; be sure
        tokens[token_id] = bytes([token_id - FIRST_BYTE])
    return tokens


@dataclass(frozen=True)
class Decoded:
    """The tokens a greedy decode chose, and the probability the model gave each when it chose it.

    `looped` says the decode hit the tokens-per-second cap before its end-of-text: a repetition
    loop, or audio the model cannot make sense of."""

    tokens: tuple[int, ...]
    probabilities: tuple[float, ...]
    seconds: float
    looped: bool = False


@dataclass(frozen=True)
class TokenWord:
    """One word of a decode: its text (punctuation attached, as written) and the mean probability
    of its tokens."""

    text: str
    probability: float


class MoonshineModel:
    """The tiny-en encoder and decoder and the token table: read-only, shared by every call."""

    def __init__(self, folder: Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        folder = folder or assets_folder()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # a spinning worker would burn a core between a live call's small decodes
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.encoder = ort.InferenceSession(str(folder / ENCODER), options,
                                                providers=["CPUExecutionProvider"])
            self.decoder = ort.InferenceSession(str(folder / DECODER), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own kinds for a damaged or foreign file
            raise ModelError(f"cannot load Moonshine tiny-en from {folder}: {str(exc).splitlines()[0]}") \
                from None
        self.tokens = read_tokens(folder / TOKENIZER)
        # No one says a quotation mark, so a decode may not begin with one. Cut part way into a turn,
        # tiny-en began 24 of the 1,338 customer partials of the labelled calls with one (Whisper
        # none) and went on as if writing dialogue: closing quotes, and tails no one said ("'cause",
        # "'I'm going to").
        self.not_first = np.array([i for i, t in enumerate(self.tokens)
                                   if t.removeprefix(SPACE).startswith((b'"', QUOTE))], dtype=np.int64)
        self.folder = folder
        self._empty = np.zeros((1, HEADS, 0, HEAD_DIM), dtype=np.float32)

    # -- the two networks ----------------------------------------------------------------------

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """The encoder's states for 16 kHz audio, `[1, frames, 288]` (about 41 frames a second)."""
        samples = np.ascontiguousarray(audio, dtype=np.float32)[None, :]
        mask = np.ones(samples.shape, dtype=np.int64)
        states: np.ndarray = self.encoder.run(None, {"input_values": samples, "attention_mask": mask})[0]
        return states

    def decode(self, audio: np.ndarray, unwanted: threading.Event | None = None) -> Decoded:
        """Greedy decode of `audio` (16 kHz, -1..1). Raises `Abandoned` when `unwanted` is set once
        the encoder has run, or between decoder steps."""
        audio = np.asarray(audio, dtype=np.float32)
        if len(audio) < MIN_SAMPLES:
            audio = np.pad(audio, (0, MIN_SAMPLES - len(audio)))
        seconds = len(audio) / RATE
        states = self.encode(audio)
        if unwanted is not None and unwanted.is_set():
            raise Abandoned
        # the decoder's encoder mask is per sample, not per encoder frame (a [1, frames] mask fails
        # with a broadcast error)
        mask = np.ones((1, len(audio)), dtype=np.int64)
        feeds: dict[str, np.ndarray] = {"encoder_hidden_states": states, "encoder_attention_mask": mask,
                                        "input_ids": np.array([[BOS]], dtype=np.int64),
                                        "use_cache_branch": np.array([False])}
        for layer in range(LAYERS):
            for part in ("decoder", "encoder"):
                for kind in ("key", "value"):
                    feeds[f"past_key_values.{layer}.{part}.{kind}"] = self._empty
        names = [o.name for o in self.decoder.get_outputs()]
        limit = int(seconds * MAX_TOKENS_PER_S) + EXTRA_TOKENS
        tokens: list[int] = []
        probabilities: list[float] = []
        while len(tokens) < limit:
            outputs = dict(zip(names, self.decoder.run(names, feeds), strict=True))
            logits = outputs["logits"][0, -1].astype(np.float64)
            if not tokens:
                logits[self.not_first] = -np.inf
            token = int(np.argmax(logits))
            probability = 1.0 / float(np.sum(np.exp(logits - logits[token])))  # softmax at the choice
            if token == EOS:
                return Decoded(tuple(tokens), tuple(probabilities), seconds)
            tokens.append(token)
            probabilities.append(probability)
            if unwanted is not None and unwanted.is_set():
                raise Abandoned
            # next step: the new token; the decoder's own cache grows, the encoder's (step 0) stays
            feeds["input_ids"] = np.array([[token]], dtype=np.int64)
            feeds["use_cache_branch"] = np.array([True])
            for layer in range(LAYERS):
                for kind in ("key", "value"):
                    present = outputs[f"present.{layer}.decoder.{kind}"]
                    feeds[f"past_key_values.{layer}.decoder.{kind}"] = present
                    if len(tokens) == 1:
                        feeds[f"past_key_values.{layer}.encoder.{kind}"] = \
                            outputs[f"present.{layer}.encoder.{kind}"]
        return Decoded(tuple(tokens), tuple(probabilities), seconds, looped=True)

    # -- tokens to words -----------------------------------------------------------------------

    def text(self, tokens: tuple[int, ...] | list[int]) -> str:
        return self._bytes(tokens).decode("utf-8", errors="replace").replace("\u2581", " ").strip()

    def words(self, decoded: Decoded) -> list[TokenWord]:
        """The decode's words: a token that begins with "▁" begins a word."""
        groups: list[tuple[list[int], list[float]]] = []
        for token, probability in zip(decoded.tokens, decoded.probabilities, strict=True):
            if not groups or self.tokens[token].startswith(SPACE):
                groups.append(([], []))
            groups[-1][0].append(token)
            groups[-1][1].append(probability)
        words = []
        for ids, probabilities in groups:
            text = self.text(ids)
            if text:
                words.append(TokenWord(text, float(np.mean(probabilities))))
        return words

    def _bytes(self, tokens: tuple[int, ...] | list[int]) -> bytes:
        return b"".join(self.tokens[t] for t in tokens if t > EOS)


def _key(word: str) -> str:
    return "".join(c for c in word.lower() if c.isalnum())


def trim_loop(words: list[TokenWord], longest: int = 8) -> list[TokenWord]:
    """A decode that ran into the tokens-per-second cap, without its repetition loop: the longest
    tail that repeats a run of 1-`longest` words, at least twice over, is cut after its first
    round ("the power of the power of the power" keeps "the power of"). The cap may stop the loop
    part way through a word ("lovely, lovely, lovely, lov"): a last word that begins the word one
    round earlier belongs to the loop."""
    keys = [_key(w.text) for w in words]
    n = len(keys)
    keep = n
    for k in range(1, min(longest, n // 2) + 1):
        run = n  # the periodic tail begins k words before `run`
        if keys[n - 1] and keys[n - 1] != keys[n - 1 - k] and keys[n - 1 - k].startswith(keys[n - 1]):
            run = n - 1
        while run - 1 - k >= 0 and keys[run - 1] == keys[run - 1 - k]:
            run -= 1
        if n - run >= k and run < keep:
            keep = run
    return words[:keep]


class MoonshineSpeech:
    """Moonshine tiny-en as the transcriber's speech model, with the checks that keep what it
    writes on non-speech out of the transcript.

    Moonshine has no no-speech probability: on silence it writes "You", on a hum "♪♪♪", on noise
    the phrases of its training subtitles. The VAD comes first (nothing reaches a decode without a
    quarter second of speech in it); then a decode is dropped when its words' mean probability is
    under `min_mean_word_probability`, when all it says is one of `silence_phrases`, or when it is
    a loop with nothing left once the loop is cut."""

    def __init__(self, model: MoonshineModel, label: str) -> None:
        self.model = model
        self.label = label

    def hear(self, audio: np.ndarray, *, final: bool, options: TranscriberOptions,
             unwanted: threading.Event | None = None) -> Heard:
        decoded = self.model.decode(audio, unwanted)
        words = self.model.words(decoded)
        if decoded.looped:
            words = trim_loop(words)
        heard = [HeardWord(text, w.probability) for w in words if (text := clean_text(w.text))]
        if not heard:
            return Heard("")
        text = " ".join(w.text for w in heard)
        mean_p = float(np.mean([w.p for w in heard]))
        if mean_p < options.min_mean_word_probability:
            log.debug("dropped a low-confidence decode (mean p %.2f): %r", mean_p, text)
            return Heard("")
        if _key(text) in options.silence_phrases:
            log.debug("dropped what Moonshine writes on non-speech: %r", text)
            return Heard("")
        if not final and len(heard) > 1 and heard[-1].p < options.partial_last_word_min_p:
            # a partial's audio ends while someone speaks: its last word was heard only in part,
            # and Moonshine guesses a whole word for it
            text = " ".join(w.text for w in heard[:-1])
        return Heard(text, tuple(heard) if final else ())

    def offline(self, audio: np.ndarray) -> str:
        """The offline transcript of a whole recording, as Moonshine's own tools make one: cut into
        stretches of speech of at most 20 s by the Silero VAD, each decoded whole."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        from agent_assist.transcriber import TranscriberOptions

        options = TranscriberOptions(model=self.label)
        spans = get_speech_timestamps(audio, VadOptions(max_speech_duration_s=20.0,
                                                        speech_pad_ms=250))
        return " ".join(self.hear(audio[s["start"] : s["end"]], final=False, options=options).text
                        for s in spans)


def load_moonshine(threads: int = 1, label: str = "moonshine-tiny-en") -> MoonshineSpeech:
    return MoonshineSpeech(MoonshineModel(threads=threads), label)
