"""Fine-tune the MiniLM encoder end to end with heads for distress, escalation, crisis and its kind.

Training only: this module imports PyTorch (the `train` extra), which the live path never does. The
trained weights leave here as numpy arrays, and `onnx_graphs.turn_model` writes them out as the
ONNX graph that onnxruntime runs on a call.

The network reads a customer's turn *with its context*, as people judge it: the customer's previous
turn and the agent's words just before, as the first segment of a BERT pair, and the turn itself as
the second. The turn's tokens are mean-pooled (the context informs them through attention, but is
not itself scored), then one linear layer gives the three signals' logits and another the crisis
kind (self-harm, violence, danger).

Deterministic: a fixed seed, a fixed thread count and PyTorch's deterministic algorithms, so the
same data gives the same weights, and the same ONNX bytes. The shipped model averages the weights
of several runs with consecutive seeds (`TrainOptions.runs`, `average`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent_assist.scoring.turns import CRISIS_KINDS, SIGNALS, Encoded

Progress = Callable[[str], None]

HIDDEN = 384
LAYERS = 6
HEADS = 12


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - the message is the point
        from agent_assist.errors import AgentAssistError

        raise AgentAssistError(
            "training the text model needs PyTorch: pip install 'agent-assist[train]' "
            "(on this machine: pip install torch==2.13.0)"
        ) from None
    return torch


def build_network(weights: dict[str, np.ndarray], dropout: float = 0.1) -> Any:
    """The encoder (parameter names as in the released model's safetensors) with the heads."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class Layer(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.attention = nn.Module()
            self.attention.self = nn.Module()
            for name in ("query", "key", "value"):
                setattr(self.attention.self, name, nn.Linear(HIDDEN, HIDDEN))
            self.attention.output = nn.Module()
            self.attention.output.dense = nn.Linear(HIDDEN, HIDDEN)
            self.attention.output.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)
            self.intermediate = nn.Module()
            self.intermediate.dense = nn.Linear(HIDDEN, 4 * HIDDEN)
            self.output = nn.Module()
            self.output.dense = nn.Linear(4 * HIDDEN, HIDDEN)
            self.output.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)
            self.drop = nn.Dropout(dropout)

        def forward(self, x: Any, bias: Any) -> Any:
            b, n, _ = x.shape
            s = self.attention.self

            def split(h: Any) -> Any:
                return h.view(b, n, HEADS, HIDDEN // HEADS).transpose(1, 2)

            q, k, v = split(s.query(x)), split(s.key(x)), split(s.value(x))
            scores = q @ k.transpose(-1, -2) / math.sqrt(HIDDEN // HEADS) + bias
            context = (self.drop(scores.softmax(-1)) @ v).transpose(1, 2).reshape(b, n, HIDDEN)
            x = self.attention.output.LayerNorm(x + self.drop(self.attention.output.dense(context)))
            h = F.gelu(self.intermediate.dense(x))
            return self.output.LayerNorm(x + self.drop(self.output.dense(h)))

    class Network(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.Module()
            vocab, positions = weights["embeddings.word_embeddings.weight"].shape[0], 512
            self.embeddings.word_embeddings = nn.Embedding(vocab, HIDDEN)
            self.embeddings.position_embeddings = nn.Embedding(positions, HIDDEN)
            self.embeddings.token_type_embeddings = nn.Embedding(2, HIDDEN)
            self.embeddings.LayerNorm = nn.LayerNorm(HIDDEN, eps=1e-12)
            self.encoder = nn.Module()
            self.encoder.layer = nn.ModuleList(Layer() for _ in range(LAYERS))
            self.drop = nn.Dropout(dropout)
            self.signals = nn.Linear(HIDDEN, len(SIGNALS))
            self.kind = nn.Linear(HIDDEN, len(CRISIS_KINDS))

        def forward(self, ids: Any, types: Any, mask: Any) -> tuple[Any, Any]:
            n = ids.shape[1]
            e = self.embeddings
            x = e.word_embeddings(ids) + e.position_embeddings.weight[:n] + e.token_type_embeddings(types)
            x = self.drop(e.LayerNorm(x))
            fmask = mask.to(x.dtype)
            bias = ((1.0 - fmask) * -10000.0)[:, None, None, :]
            for layer in self.encoder.layer:
                x = layer(x, bias)
            turn = (fmask * types.to(x.dtype))[:, :, None]
            pooled = (x * turn).sum(1) / turn.sum(1).clamp(min=1.0)
            pooled = self.drop(pooled)
            return self.signals(pooled), self.kind(pooled)

    net = Network()
    state = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in weights.items()
             if k.startswith(("embeddings.", "encoder.", "signals.", "kind."))
             and k != "embeddings.position_ids"}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.startswith(("signals.", "kind."))]:
        raise ValueError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
    generator = torch.Generator().manual_seed(0)
    for head in (net.signals, net.kind) if "signals.weight" not in weights else ():
        torch.nn.init.normal_(head.weight, std=0.02, generator=generator)
        torch.nn.init.zeros_(head.bias)
    return net


@dataclass(frozen=True)
class TrainOptions:
    epochs: float = 3.0
    batch_size: int = 32
    encoder_lr: float = 6e-5
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    dropout: float = 0.1
    # a crisis is rare in every source (about 1 row in 40 here): its positives weigh this much more,
    # as a balanced class weight would, so the head learns the indirect ones too
    crisis_positive_weight: float = 4.0
    threads: int = 2
    seed: int = 20261123
    # the model is the average of this many runs' fine-tuned weights, seeded seed, seed + 1, …: all
    # start from the same encoder, so their weights average into one network, and no one seed's
    # luck (the order of the batches, which calm turns borrow a crisis's context) decides it
    runs: int = 3
    max_steps: int | None = None  # a short run for tests


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of rows of similar length (less padding), in a shuffled order."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches: list[np.ndarray] = []
    for lo in range(0, len(order), chunk):
        part = order[lo : lo + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def fit(
    weights: dict[str, np.ndarray],
    data: Encoded,
    options: TrainOptions,
    progress: Progress,
) -> dict[str, np.ndarray]:
    """Fine-tune on `data` and return every weight (encoder and heads) as numpy arrays.

    `data.labels` is (N, 3) with -1 where a source says nothing of a signal; `data.kind` is the
    crisis kind's index, or -1; `data.weight` each row's weight in the loss.
    """
    torch = _torch()
    torch.manual_seed(options.seed)
    torch.set_num_threads(options.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(options.seed)
    net = build_network(weights, options.dropout)
    net.train()
    heads = [p for n, p in net.named_parameters() if n.startswith(("signals.", "kind."))]
    body = [p for n, p in net.named_parameters() if not n.startswith(("signals.", "kind."))]
    decay = [p for p in body if p.dim() > 1]
    no_decay = [p for p in body if p.dim() <= 1]
    optimiser = torch.optim.AdamW(
        [
            {"params": decay, "lr": options.encoder_lr, "weight_decay": options.weight_decay},
            {"params": no_decay, "lr": options.encoder_lr, "weight_decay": 0.0},
            {"params": heads, "lr": options.head_lr, "weight_decay": 0.0},
        ]
    )
    base_lrs = [g["lr"] for g in optimiser.param_groups]
    per_epoch = math.ceil(len(data) / options.batch_size)
    total = max(1, int(per_epoch * options.epochs))
    if options.max_steps is not None:
        total = min(total, options.max_steps)
    warm = max(1, int(total * options.warmup))
    labels = torch.from_numpy(data.labels.astype(np.float32))
    kinds = torch.from_numpy(data.kind.astype(np.int64))
    row_weight = torch.from_numpy(data.weight.astype(np.float32))
    pos_weight = torch.tensor([1.0, 1.0, options.crisis_positive_weight])
    step = 0
    running = 0.0
    while step < total:
        for batch in _batches(data.lengths, options.batch_size, rng):
            if step >= total:
                break
            scale = step / warm if step < warm else max(0.0, (total - step) / max(1, total - warm))
            for group, lr in zip(optimiser.param_groups, base_lrs, strict=True):
                group["lr"] = lr * scale
            ids, types, mask = (torch.from_numpy(a) for a in data.padded(batch))
            logits, kind_logits = net(ids, types, mask)
            y = labels[batch]
            known = (y >= 0).to(logits.dtype)
            w = row_weight[batch][:, None]
            bce = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, y.clamp(min=0.0), reduction="none", pos_weight=pos_weight
            )
            loss = (bce * known * w).sum() / (known * w).sum().clamp(min=1.0)
            k = kinds[batch]
            has_kind = k >= 0
            if bool(has_kind.any()):
                ce = torch.nn.functional.cross_entropy(kind_logits[has_kind], k[has_kind], reduction="none")
                kw = row_weight[batch][has_kind]
                loss = loss + 0.5 * (ce * kw).sum() / kw.sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
            value = float(loss.detach())
            running = 0.98 * running + 0.02 * value if step else value
            step += 1
            if step % 50 == 0 or step == total:
                progress(f"fine-tuning: step {step}/{total}, loss {running:.3f}")
    net.eval()
    return {name: tensor.detach().numpy().copy() for name, tensor in net.state_dict().items()}


def average(runs: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The element-wise mean of several runs' weights (float arrays; any other must be the same in
    every run)."""
    if not runs:
        raise ValueError("no runs to average")
    out: dict[str, np.ndarray] = {}
    for name, first in runs[0].items():
        arrays = [run[name] for run in runs]
        if np.issubdtype(first.dtype, np.floating):
            out[name] = np.mean(np.stack(arrays), axis=0, dtype=np.float64).astype(first.dtype)
        elif all(np.array_equal(first, a) for a in arrays):
            out[name] = first
        else:
            raise ValueError(f"runs differ in {name}, which cannot be averaged")
    return out


def logits(weights: dict[str, np.ndarray], data: Encoded, threads: int = 2,
           batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The float network's signal and kind logits for every row (for checks against the ONNX file)."""
    torch = _torch()
    torch.set_num_threads(threads)
    net = build_network(weights, 0.0)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    net.eval()
    out_s = np.zeros((len(data), len(SIGNALS)), np.float32)
    out_k = np.zeros((len(data), len(CRISIS_KINDS)), np.float32)
    order = np.argsort(data.lengths, kind="stable")
    with torch.no_grad():
        for lo in range(0, len(order), batch_size):
            rows = order[lo : lo + batch_size]
            ids, types, mask = (torch.from_numpy(a) for a in data.padded(rows))
            s, k = net(ids, types, mask)
            out_s[rows] = s.numpy()
            out_k[rows] = k.numpy()
    return out_s, out_k
