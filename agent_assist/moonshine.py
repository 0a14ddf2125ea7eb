"""Moonshine run with plain onnxruntime: the encoder, the decoder with its KV cache, greedy
decoding, and the tokenizer. tiny-en is read from the files that `moonshine-voice==0.1.0` ships;
base-en from the files `agent_assist.moonshine_base` converts once from `moonshine-cpp==0.1.4`.

Why Moonshine: Whisper always encodes a 30 s window, so a one-word turn costs as much as a 25 s
one. Moonshine's encoder takes the audio as it is, so a decode costs what the utterance costs
(a 2 s turn: about 0.05 s of CPU, against 0.4 s for Whisper's encoder alone). On 855 words it
scored 3.8 % WER against tiny.en's 3.7 %, and 5.2 % against 6.0 % on telephone-band audio
(`../shared/notes/speech-models.md`).

Only the packages' files are read: `import moonshine_voice` would load its own 42 MB native
library, which the project neither needs nor trusts on the real-time path. The version is pinned
exactly because later versions no longer carry the weights.

Both models decode in one loop (`MoonshineModel.decode`). What differs is read from the files
themselves: tiny-en's decoder is one merged graph that picks its first step or a later one by
`use_cache_branch` and wants a per-sample encoder mask; base-en's is two graphs (`decoder_first`,
`decoder_step`) and wants no mask; the layer count and head size come from the cache inputs.

A `MoonshineModel` holds the onnxruntime sessions and the token table, and no state of a decode:
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
BOS, EOS = 1, 2
FIRST_BYTE, LAST_BYTE = 3, 258  # ids 3-258 are the raw bytes 0-255 (byte fallback)
SPACE = "\u2581".encode()  # SentencePiece's word boundary, "▁"
QUOTE = "\u201c".encode()  # an opening quotation mark, as typeset
RATE = 16000
# Tokens per second of audio before a decode is taken to be looping. English speech runs at about
# 3-4 tokens per second in this vocabulary; Moonshine's own reference code stops at 6.5 per second.
MAX_TOKENS_PER_S = 6.5
EXTRA_TOKENS = 4  # plus this many, so a short word in a short clip is never cut
# The encoder's strided convolutions need 895 samples to give one frame; shorter audio (never a
# segment the VAD sends, which holds at least 0.25 s of speech) is zero padded to 0.1 s.
MIN_SAMPLES = 1600


@dataclass(frozen=True)
class ModelFiles:
    """A Moonshine model's files in its folder: the encoder, the decoder's first step and its later
    steps (one merged file serves both in tiny-en), and the token table."""

    encoder: str
    first: str
    step: str
    tokenizer: str = "tokenizer.bin"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.encoder, self.first, self.step, self.tokenizer)))


TINY_FILES = ModelFiles("encoder_model.ort", "decoder_model_merged.ort", "decoder_model_merged.ort")


def assets_folder() -> Path:
    """The folder of tiny-en's files inside the installed moonshine-voice, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        folder = Path(location) / FOLDER
        if all((folder / name).is_file() for name in TINY_FILES.names):
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
    """A Moonshine encoder and decoder and the token table: read-only, shared by every call.

    `name` ("tiny-en", "base-en") is for messages; `files` names the model's files in `folder`
    (tiny-en's, in the installed moonshine-voice, when neither is given)."""

    def __init__(self, folder: Path | None = None, threads: int = 1, files: ModelFiles = TINY_FILES,
                 name: str = "tiny-en") -> None:
        import onnxruntime as ort

        folder = folder or assets_folder()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # a spinning worker would burn a core between a live call's small decodes
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        # no memory arena: a decode's tensors are sized by its audio, and an arena keeps the largest
        # it ever needed (the sample call's replay with partials: peak RSS 412 MB with it, 389
        # without, at the same speed)
        options.enable_cpu_mem_arena = False

        def session(file: str) -> ort.InferenceSession:
            return ort.InferenceSession(str(folder / file), options, providers=["CPUExecutionProvider"])

        try:
            self.encoder = session(files.encoder)
            self.first = session(files.first)
            self.step = self.first if files.step == files.first else session(files.step)
        except Exception as exc:  # onnxruntime raises its own kinds for a damaged or foreign file
            raise ModelError(f"cannot load Moonshine {name} from {folder}: {str(exc).splitlines()[0]}") \
                from None
        self.tokens = read_tokens(folder / files.tokenizer)
        # No one says a quotation mark, so a decode may not begin with one. Cut part way into a turn,
        # tiny-en began 24 of the 1,338 customer partials of the labelled calls with one (Whisper
        # none) and went on as if writing dialogue: closing quotes, and tails no one said ("'cause",
        # "'I'm going to").
        self.not_first = np.array([i for i, t in enumerate(self.tokens)
                                   if t.removeprefix(SPACE).startswith((b'"', QUOTE))], dtype=np.int64)
        self.folder = folder
        self.name = name
        # What the files ask for, read from the files: an encoder that takes a mask (tiny-en); the
        # first step's inputs (tiny-en's merged decoder: empty caches, a per-sample encoder mask and
        # `use_cache_branch`); and the caches a later step takes, `past_key_values.{layer}.{part}.{kind}`
        # (tiny-en 6 layers of 8 heads of 36, base-en 8 of 8 of 52).
        self._encoder_inputs = {i.name for i in self.encoder.get_inputs()}
        self._first_inputs = {i.name: i.shape for i in self.first.get_inputs()}
        self._step_inputs = {i.name for i in self.step.get_inputs()}
        caches = sorted(n for n in self._step_inputs if n.startswith("past_key_values."))
        self._decoder_caches = [n for n in caches if ".decoder." in n]
        self._encoder_caches = [n for n in caches if ".encoder." in n]
        self._step_outputs = ["logits", *(_present(n) for n in self._decoder_caches)]

    # -- the two networks ----------------------------------------------------------------------

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """The encoder's states for 16 kHz audio, `[1, frames, width]` (about 41 frames a second;
        width 288 for tiny-en, 416 for base-en)."""
        samples = np.ascontiguousarray(audio, dtype=np.float32)[None, :]
        feeds = {"input_values": samples}
        if "attention_mask" in self._encoder_inputs:
            feeds["attention_mask"] = np.ones(samples.shape, dtype=np.int64)
        states: np.ndarray = self.encoder.run(None, feeds)[0]
        return states

    def _first_feeds(self, states: np.ndarray, samples: int) -> dict[str, np.ndarray]:
        """The first decoder step's inputs: the start token and the encoder's states, and what a
        merged decoder also wants (empty caches, its mask, `use_cache_branch` false)."""
        feeds = {"input_ids": np.array([[BOS]], dtype=np.int64), "encoder_hidden_states": states}
        for name, shape in self._first_inputs.items():
            if name.startswith("past_key_values."):
                feeds[name] = np.zeros((1, shape[1], 0, shape[3]), dtype=np.float32)
            elif name == "encoder_attention_mask":
                # per sample, not per encoder frame (a [1, frames] mask fails with a broadcast error)
                feeds[name] = np.ones((1, samples), dtype=np.int64)
            elif name == "use_cache_branch":
                feeds[name] = np.array([False])
        return feeds

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
        first = self._first_feeds(states, len(audio))
        names = [o.name for o in self.first.get_outputs()]
        outputs = dict(zip(names, self.first.run(names, first), strict=True))
        # a later step: what the first step was given that the step graph also takes (a merged
        # decoder's states and mask), the encoder's caches from the first step, which stay, and
        # the decoder's own caches, which grow each step
        feeds = {k: v for k, v in first.items() if k in self._step_inputs}
        if "use_cache_branch" in self._step_inputs:
            feeds["use_cache_branch"] = np.array([True])
        for name in self._encoder_caches:
            feeds[name] = outputs[_present(name)]
        limit = int(seconds * MAX_TOKENS_PER_S) + EXTRA_TOKENS
        tokens: list[int] = []
        probabilities: list[float] = []
        while len(tokens) < limit:
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
            feeds["input_ids"] = np.array([[token]], dtype=np.int64)
            for name in self._decoder_caches:
                feeds[name] = outputs[_present(name)]
            outputs = dict(zip(self._step_outputs, self.step.run(self._step_outputs, feeds), strict=True))
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


def _present(past: str) -> str:
    """The output that carries a cache input's next value: `past_key_values.3.decoder.key` ->
    `present.3.decoder.key`."""
    return "present." + past.removeprefix("past_key_values.")


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
    """A Moonshine model (tiny-en or base-en) as the transcriber's speech model, with the checks
    that keep what it writes on non-speech out of the transcript.

    Moonshine has no no-speech probability: on silence tiny-en writes "You", on a hum "♪♪♪", on
    noise the phrases of its training subtitles (base-en writes nothing on any of these). The VAD
    comes first (nothing reaches a decode without a quarter second of speech in it); then a decode
    is dropped when its words' mean probability is under `min_mean_word_probability`, when all it
    says is one of `silence_phrases`, or when it is a loop with nothing left once the loop is cut."""

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
