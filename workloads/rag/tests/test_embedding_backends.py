"""The ONNX backend (graph exported from the packaged weights) against sentence-transformers on
torch: same vectors, same token counts, export cached by content and never torn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tierwise_rag.embedding import MiniLMEmbedder, OnnxMiniLMEmbedder, export_onnx

pytestmark = [pytest.mark.slow]

TEXTS = [
    "What is Debian GNU/Linux?",
    "How can I install a package that was not released yet, from unstable?",
    "dpkg",
    "Ünïcödé, emoji 🙂 and CJK 日本語 mixed with code: apt-get install -y --no-install-recommends foo=1.2-3",
    # longer than the model's 256-token window: both backends must truncate the same way
    " ".join(f"word{i} packages are maintained by volunteers" for i in range(120)),
    "A medium paragraph. " * 20,
]


@pytest.fixture(scope="module")
def backends(onnx_cache):
    # batch_threads=2: ingestion batches run on their own 2-thread session over the same graph
    return MiniLMEmbedder(threads=1), OnnxMiniLMEmbedder(threads=1, batch_threads=2, cache_dir=onnx_cache)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_matches_torch_single_and_batched(backends) -> None:
    torch_emb, onnx_emb = backends
    ref = torch_emb.embed(TEXTS)
    batched = onnx_emb.embed(TEXTS, batch_size=4)  # padded, length-sorted batches
    singles = np.vstack([onnx_emb.embed([t]) for t in TEXTS])  # the unpadded query path
    assert batched.shape == ref.shape == (len(TEXTS), 384) and batched.dtype == np.float32
    assert np.all(_cos(ref, batched) > 1 - 1e-4), _cos(ref, batched)
    assert np.all(_cos(ref, singles) > 1 - 1e-4), _cos(ref, singles)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert onnx_emb.name == torch_emb.name  # one model, two runtimes: version ids do not depend on the backend


def test_onnx_token_counts_match_the_hf_tokenizer(backends) -> None:
    torch_emb, onnx_emb = backends
    for text in TEXTS:
        assert onnx_emb.count_tokens(text) == torch_emb.count_tokens(text)
    assert onnx_emb.count_tokens(TEXTS[4]) > onnx_emb.max_tokens  # counting does not truncate


def test_export_is_cached_by_content(onnx_cache, backends) -> None:
    _, onnx_emb = backends
    path = export_onnx(cache_dir=onnx_cache)
    assert path == onnx_emb.onnx_path
    before = path.stat().st_mtime_ns
    assert export_onnx(cache_dir=onnx_cache) == path and path.stat().st_mtime_ns == before  # second call: no re-export
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".model-")] == []  # no temp files left behind


def test_int8_graph_is_close_built_once_and_named_apart(onnx_cache, backends) -> None:
    _, fp32 = backends
    int8 = OnnxMiniLMEmbedder(threads=1, cache_dir=onnx_cache, quantized=True)
    assert int8.onnx_path.name == "model.int8pc.onnx" and int8.onnx_path.parent == fp32.onnx_path.parent
    a, b = fp32.embed(TEXTS), int8.embed(TEXTS)
    cos = _cos(a, b)
    assert np.all(cos > 0.97) and np.all(cos < 1 - 1e-5), cos  # close (per-channel scales), but really a different graph
    assert int8.name != fp32.name and int8.name.startswith("all-MiniLM-L6-v2-int8pc@")  # its own anchored version ids
    before = int8.onnx_path.stat().st_mtime_ns
    assert OnnxMiniLMEmbedder(threads=1, cache_dir=onnx_cache, quantized=True).onnx_path.stat().st_mtime_ns == before


def test_quantized_needs_the_onnx_backend() -> None:
    from pydantic import ValidationError

    from tierwise_rag.settings import Settings

    with pytest.raises(ValidationError, match="embed_quantized needs embed_backend=onnx"):
        Settings(embed_backend="torch", embed_quantized=True)


def test_cli_exports_both_graphs(onnx_cache) -> None:
    from typer.testing import CliRunner

    from tierwise_rag.cli import app

    out = CliRunner().invoke(app, ["export-onnx", "--cache-dir", str(onnx_cache), "--quantized"])
    assert out.exit_code == 0, out.output
    fp32, int8 = out.output.split()
    assert fp32.endswith("model.onnx") and int8.endswith("model.int8pc.onnx") and Path(int8).parent == Path(fp32).parent


def test_token_counts_add_up_over_whitespace_joins(backends) -> None:
    """The chunker costs a join of pieces as the sum of their counts (counting each piece once); that
    is exact only if no WordPiece token spans the whitespace a join inserts."""
    _, onnx = backends
    pieces = [s for t in TEXTS for s in t.split(" ") if s] + TEXTS
    for sep in (" ", "\n"):
        for i in range(len(pieces) - 1):
            a, b = pieces[i], pieces[i + 1]
            assert onnx.count_tokens(a + sep + b) == onnx.count_tokens(a) + onnx.count_tokens(b), (a, b)


@pytest.mark.parametrize("quantized", [False, True])
def test_a_vector_depends_only_on_its_text(onnx_cache, quantized) -> None:
    """A multi-text call (ingestion, two texts at a time) gives each text the vector a call with that
    text alone gives (the query path). With the int8 graph, batching texts padded together did not:
    dynamic quantization scales activations per tensor, so companions and padding moved a vector."""
    emb = OnnxMiniLMEmbedder(threads=1, batch_threads=2, cache_dir=onnx_cache, quantized=quantized)
    alone = np.stack([emb.embed([t])[0] for t in TEXTS])
    together = emb.embed(TEXTS)
    reordered = emb.embed(TEXTS[::-1])[::-1]
    assert np.abs(together - alone).max() < 1e-6 and np.abs(reordered - alone).max() < 1e-6
    padded = emb.embed(TEXTS, batch_size=len(TEXTS))  # the old way: one padded batch
    assert np.all(_cos(padded, alone) > 0.97)
    if quantized:
        assert np.abs(padded - alone).max() > 1e-3  # why the default is one text per call
