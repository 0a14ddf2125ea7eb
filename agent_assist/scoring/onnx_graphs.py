"""ONNX graphs for the trained classifiers, written out node by node with `onnx.helper`.

Only the training side imports this (it needs the `onnx` package); the live path loads the files
with onnxruntime. The graphs are small and fixed, so they are spelled out here rather than
converted: the same arithmetic as `training.py`'s scikit-learn models, checked against them when
they are built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(value, name=name)


def text_model(
    *,
    terms: Sequence[str],
    idf: np.ndarray,
    term_coef: np.ndarray,
    dense_coef: np.ndarray,
    intercept: np.ndarray,
    calib_a: np.ndarray,
    calib_b: np.ndarray,
    doc: str,
) -> onnx.ModelProto:
    """Stem terms and a sentence embedding → probabilities (N, K).

    The terms of several utterances arrive flattened with the row each belongs to and its
    sublinear term frequency; unknown terms map to an all-zero last row. The TF-IDF vector of each
    row is L2-normalised, as scikit-learn's TfidfVectorizer does.
    """
    k = term_coef.shape[1]
    tcoef = np.vstack([term_coef, np.zeros((1, k))]).astype(np.float32)
    tidf = np.concatenate([idf, [0.0]]).astype(np.float32)
    inits = [
        _const("term_coef", tcoef),
        _const("idf", tidf),
        _const("dense_coef", dense_coef.astype(np.float32)),
        _const("intercept", intercept.astype(np.float32)),
        _const("calib_a", calib_a.astype(np.float32)),
        _const("calib_b", calib_b.astype(np.float32)),
        _const("eps", np.array(1e-9, np.float32)),
        _const("k", np.array([k], np.int64)),
        _const("axis1", np.array([1], np.int64)),
    ]
    zeros = helper.make_tensor("z", TensorProto.FLOAT, [1], [0.0])
    nodes = [
        helper.make_node("MatMul", ["embedding", "dense_coef"], ["dense_logit"]),
        helper.make_node(
            "LabelEncoder",
            ["terms"],
            ["tid"],
            domain="ai.onnx.ml",
            keys_strings=list(terms),
            values_int64s=list(range(len(terms))),
            default_int64=len(terms),
        ),
        helper.make_node("Gather", ["idf", "tid"], ["tidf"]),
        helper.make_node("Mul", ["term_tf", "tidf"], ["tw"]),
        helper.make_node("Mul", ["tw", "tw"], ["tw2"]),
        helper.make_node("ConstantOfShape", ["rows"], ["zeros_n"], value=zeros),
        helper.make_node("ScatterND", ["zeros_n", "term_row", "tw2"], ["sq"], reduction="add"),
        helper.make_node("Sqrt", ["sq"], ["tnorm"]),
        helper.make_node("Add", ["tnorm", "eps"], ["tnorm_e"]),
        helper.make_node("Unsqueeze", ["tnorm_e", "axis1"], ["tnorm2"]),
        helper.make_node("Gather", ["term_coef", "tid"], ["tcoef"]),
        helper.make_node("Unsqueeze", ["tw", "axis1"], ["tw_col"]),
        helper.make_node("Mul", ["tcoef", "tw_col"], ["tcontrib"]),
        helper.make_node("Concat", ["rows", "k"], ["shape_nk"], axis=0),
        helper.make_node("ConstantOfShape", ["shape_nk"], ["zeros_nk"], value=zeros),
        helper.make_node("ScatterND", ["zeros_nk", "term_row", "tcontrib"], ["sparse_sum"], reduction="add"),
        helper.make_node("Div", ["sparse_sum", "tnorm2"], ["sparse_logit"]),
        helper.make_node("Add", ["sparse_logit", "dense_logit"], ["logit0"]),
        helper.make_node("Add", ["logit0", "intercept"], ["logits"]),
        helper.make_node("Mul", ["logits", "calib_a"], ["scaled"]),
        helper.make_node("Add", ["scaled", "calib_b"], ["calibrated"]),
        helper.make_node("Sigmoid", ["calibrated"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "agent_assist_text",
        inputs=[
            helper.make_tensor_value_info("terms", TensorProto.STRING, ["T"]),
            helper.make_tensor_value_info("term_tf", TensorProto.FLOAT, ["T"]),
            helper.make_tensor_value_info("term_row", TensorProto.INT64, ["T", 1]),
            helper.make_tensor_value_info("rows", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", dense_coef.shape[0]]),
        ],
        outputs=[helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", k])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="agent-assist", doc_string=doc)
    onnx.checker.check_model(model)
    return model


def _bert(weights: dict[str, np.ndarray], nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], *,
          token_types: bool, layers: int = 6, heads: int = 12) -> tuple[str, str]:
    """The BERT encoder's nodes, appended to `nodes`: (hidden states [B, L, H], float mask [B, L]).

    Post-LayerNorm BERT with exact (erf) GELU, the arithmetic of MiniLM as released. With
    `token_types` the segment of each piece comes from the `token_type_ids` input, else it is 0.
    """
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    head_dim = hidden // heads

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = f"{op.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def norm(x: str, prefix: str) -> str:
        g = const(prefix + ".weight", weights[prefix + ".weight"])
        b = const(prefix + ".bias", weights[prefix + ".bias"])
        return node("LayerNormalization", [x, g, b], axis=-1, epsilon=1e-12)

    def linear(x: str, prefix: str) -> str:
        w = const(prefix + ".weight_t", np.ascontiguousarray(weights[prefix + ".weight"].T))
        b = const(prefix + ".bias", weights[prefix + ".bias"])
        return node("Add", [node("MatMul", [x, w]), b])

    const("word", weights["embeddings.word_embeddings.weight"])
    const("position", weights["embeddings.position_embeddings.weight"])
    for name, value in {
        "i0": np.array(0, np.int64),
        "i1": np.array(1, np.int64),
        "ax1_": np.array([1], np.int64),
        "ax2_": np.array([2], np.int64),
        "big_negative": np.array(-10000.0, np.float32),
        "f1": np.array(1.0, np.float32),
        "f_half": np.array(0.5, np.float32),
        "inv_sqrt2": np.array(1 / np.sqrt(2), np.float32),
        "sqrt_hd": np.array(np.sqrt(head_dim), np.float32),
        "split_heads": np.array([0, 0, heads, head_dim], np.int64),
        "merge_heads": np.array([0, 0, hidden], np.int64),
    }.items():
        const(name, np.asarray(value))
    length = node("Gather", [node("Shape", ["input_ids"]), "i1"], axis=0)
    positions = node("Range", ["i0", length, "i1"])
    if token_types:
        const("token_type", weights["embeddings.token_type_embeddings.weight"])
        segment = node("Gather", ["token_type", "token_type_ids"])
    else:
        segment = const("token_type", weights["embeddings.token_type_embeddings.weight"][0])
    x = node(
        "Add",
        [node("Add", [node("Gather", ["word", "input_ids"]), node("Gather", ["position", positions])]),
         segment],
    )
    x = norm(x, "embeddings.LayerNorm")
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    # (1 - mask) * -10000 over [B, 1, 1, L], spelled as PyTorch's BERT export spells it, so that
    # onnxruntime's transformer optimizer recognises the attention around it (`fuse`)
    mask4 = node("Cast", [node("Unsqueeze", [node("Unsqueeze", ["attention_mask", "ax1_"]), "ax2_"])],
                 to=TensorProto.FLOAT)
    bias = node("Mul", [node("Sub", ["f1", mask4]), "big_negative"])
    for layer in range(layers):
        p = f"encoder.layer.{layer}."

        def split(h: str, perm: list[int]) -> str:
            return node("Transpose", [node("Reshape", [h, "split_heads"])], perm=perm)

        q = split(linear(x, p + "attention.self.query"), [0, 2, 1, 3])
        k = split(linear(x, p + "attention.self.key"), [0, 2, 3, 1])
        v = split(linear(x, p + "attention.self.value"), [0, 2, 1, 3])
        scores = node("Add", [node("Div", [node("MatMul", [q, k]), "sqrt_hd"]), bias])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), "merge_heads"])
        x = norm(
            node("Add", [x, linear(context, p + "attention.output.dense")]), p + "attention.output.LayerNorm"
        )
        h = linear(x, p + "intermediate.dense")
        # exact GELU, x * ((1 + erf(x / sqrt 2)) * 0.5): the optimizer's spelling (halving is exact)
        h = node("Mul", [h, node("Mul", [node("Add", [node("Erf", [node("Mul", [h, "inv_sqrt2"])]), "f1"]),
                                         "f_half"])])
        x = norm(node("Add", [x, linear(h, p + "output.dense")]), p + "output.LayerNorm")
    return x, mask


def minilm(weights: dict[str, np.ndarray], *, layers: int = 6, heads: int = 12) -> onnx.ModelProto:
    """A BERT encoder (all-MiniLM-L6-v2) with mean pooling and L2 normalisation, from its weights.

    Inputs `input_ids` and `attention_mask` (int64, [B, L]); output `embedding` (float, [B, H]).
    The same arithmetic as the sentence-transformers model.
    """
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    x, mask = _bert(weights, nodes, inits, token_types=False, layers=layers, heads=heads)
    inits += [_const("ax1", np.array([1], np.int64)), _const("ax2", np.array([2], np.int64)),
              _const("tiny", np.array(1e-12, np.float32))]
    nodes += [
        helper.make_node("Unsqueeze", [mask, "ax2"], ["mask3"]),
        helper.make_node("Mul", [x, "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "ax1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", [mask, "ax1"], ["count"], keepdims=1),
        helper.make_node("Div", ["summed", "count"], ["mean"]),
        helper.make_node("ReduceL2", ["mean"], ["length"], axes=[1], keepdims=1),
        helper.make_node("Max", ["length", "tiny"], ["length_safe"]),
        helper.make_node("Div", ["mean", "length_safe"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "minilm_sentence_encoder",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", "L"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["B", "L"]),
        ],
        outputs=[helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["B", hidden])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=OPSET[:1], producer_name="agent-assist")
    onnx.checker.check_model(model)
    return model


#: Nodes of the turn model's heads, kept in float when the encoder is quantised to int8.
HEAD_NODES = ("signals_matmul", "kind_matmul")
#: The fused operators `fused` writes, and the ones `quantise` then turns to int8 with the MatMuls.
FUSED_OPS = ("Attention", "BiasGelu")


def fused(model: onnx.ModelProto, *, heads: int = 12) -> onnx.ModelProto:
    """`model` (a `turn_model` in float) with each layer's attention as one `Attention` node (the
    query, key and value projections one matrix product) and its GELU with the bias before it as
    one `BiasGelu`: onnxruntime's transformer optimizer for BERT, its Python fusions only
    (`opt_level=0`: nothing tied to this machine's CPU), at export, so the shipped file is already
    fused. Quantised, the attention becomes `QAttention`, with the same int8 weights, per channel.

    The arithmetic is the same: on the 600 held-back test turns the scores are the unfused model's
    to the bit. Left unfused here: the residual Add with its LayerNormalization, which onnxruntime
    fuses at load as it did before (the optimizer's own fusion of them reorders float additions,
    and int8 rounding then moved a score by up to 0.1); and the embeddings (`EmbedLayerNormalization`
    would hold the word embeddings in float, 47 MB instead of 12).
    """
    from onnxruntime.transformers.fusion_options import AttentionMaskFormat, FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = False
    options.enable_embed_layer_norm = False
    options.attention_mask_format = AttentionMaskFormat.AttentionMask  # the 0/1 mask as it comes
    hidden = next(int(i.dims[1]) for i in model.graph.initializer if i.name == "word")
    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # the optimizer rewrites the model it is given
    out = optimize_model(copy, model_type="bert", num_heads=heads, hidden_size=hidden,
                         optimization_options=options, opt_level=0).model
    found = {n.op_type for n in out.graph.node}
    if not set(FUSED_OPS) <= found:
        raise ValueError(f"the transformer optimizer left {', '.join(sorted(set(FUSED_OPS) - found))} "
                         "unfused: the graph no longer has the shape it looks for")
    if not any(o.domain == "com.microsoft" for o in out.opset_import):
        out.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return out


def turn_model(weights: dict[str, np.ndarray], *, calib_a: np.ndarray, calib_b: np.ndarray,
               doc: str) -> onnx.ModelProto:
    """The fine-tuned text model: a turn with its context → calibrated signals and the crisis kind.

    Inputs `input_ids`, `token_type_ids` (0 for the context, 1 for the turn) and `attention_mask`
    (int64, [B, L]). The turn's pieces are mean-pooled; outputs `logits` (raw, [B, 3]),
    `probabilities` (Platt-calibrated: sigmoid(a * logit + b), [B, 3]) and `kind` (softmax over
    the crisis kinds, [B, K]). `calib_a` and `calib_b` are initialisers of those names, so a
    calibration fitted on the quantised model can be set in its file afterwards.
    """
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    n_signals, n_kinds = weights["signals.weight"].shape[0], weights["kind.weight"].shape[0]
    x, mask = _bert(weights, nodes, inits, token_types=True)
    inits += [
        _const("ax1", np.array([1], np.int64)),
        _const("ax2", np.array([2], np.int64)),
        _const("one_piece", np.array(1.0, np.float32)),
        _const("signals_w", np.ascontiguousarray(weights["signals.weight"].T.astype(np.float32))),
        _const("signals_b", weights["signals.bias"].astype(np.float32)),
        _const("kind_w", np.ascontiguousarray(weights["kind.weight"].T.astype(np.float32))),
        _const("kind_b", weights["kind.bias"].astype(np.float32)),
        _const("calib_a", np.asarray(calib_a, np.float32)),
        _const("calib_b", np.asarray(calib_b, np.float32)),
    ]
    nodes += [
        helper.make_node("Cast", ["token_type_ids"], ["types_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [mask, "types_f"], ["turn_mask"]),
        helper.make_node("Unsqueeze", ["turn_mask", "ax2"], ["turn_mask3"]),
        helper.make_node("Mul", [x, "turn_mask3"], ["turn_hidden"]),
        helper.make_node("ReduceSum", ["turn_hidden", "ax1"], ["turn_sum"], keepdims=0),
        helper.make_node("ReduceSum", ["turn_mask", "ax1"], ["turn_count"], keepdims=1),
        helper.make_node("Max", ["turn_count", "one_piece"], ["turn_count_safe"]),
        helper.make_node("Div", ["turn_sum", "turn_count_safe"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "signals_w"], ["signals_xw"], name="signals_matmul"),
        helper.make_node("Add", ["signals_xw", "signals_b"], ["logits"]),
        helper.make_node("Mul", ["logits", "calib_a"], ["scaled"]),
        helper.make_node("Add", ["scaled", "calib_b"], ["calibrated"]),
        helper.make_node("Sigmoid", ["calibrated"], ["probabilities"]),
        helper.make_node("MatMul", ["pooled", "kind_w"], ["kind_xw"], name="kind_matmul"),
        helper.make_node("Add", ["kind_xw", "kind_b"], ["kind_logits"]),
        helper.make_node("Softmax", ["kind_logits"], ["kind"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "agent_assist_turn_model",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["B", "L"]),
            helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["B", "L"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["B", "L"]),
        ],
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", n_signals]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["B", n_signals]),
            helper.make_tensor_value_info("kind", TensorProto.FLOAT, ["B", n_kinds]),
        ],
        initializer=inits,
    )
    del hidden
    model = helper.make_model(graph, opset_imports=OPSET[:1], producer_name="agent-assist", doc_string=doc)
    onnx.checker.check_model(model)
    return model


def linear_model(
    *, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray, doc: str
) -> onnx.ModelProto:
    """Standardised features → logistic probabilities (N, K): the acoustic models."""
    w = (coef / scale[:, None]).astype(np.float32)  # fold the scaler into the weights
    b = (intercept - (mean / scale) @ coef).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["features", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "agent_assist_acoustic",
        inputs=[helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", len(mean)])],
        outputs=[helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", coef.shape[1]])],
        initializer=[_const("w", w), _const("b", b)],
    )
    model = helper.make_model(graph, opset_imports=OPSET[:1], producer_name="agent-assist", doc_string=doc)
    onnx.checker.check_model(model)
    return model
