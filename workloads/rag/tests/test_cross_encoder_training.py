"""Training and export of the cross-encoder reranker, on the packaged MiniLM cut to one layer and a
small synthetic task (a question about a thing; the chunk about that thing is the answer, chunks
about other things are the negatives). The exported graph must reproduce the torch logits, and the
reranker must rank the answer first for things it never saw in training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tierwise_rag.cross_encoder_training import Example, TrainConfig, export_cross_encoder, train_cross_encoder
from tierwise_rag.embedding import packaged_model_path
from tierwise_rag.rerank import CrossEncoderReranker

pytestmark = [pytest.mark.slow]

THINGS = ["printer", "password", "kernel", "invoice", "keyboard", "router", "battery", "calendar", "mailbox", "firewall",
          "compiler", "database", "scanner", "monitor", "backup", "license"]
TRAIN, HELD = THINGS[:12], THINGS[12:]


def _q(w: str) -> str:
    return f"how do I fix my {w}?"


def _chunk(w: str) -> str:
    return f"Troubleshooting the {w}\n\nWhen the {w} stops working, restart the {w} and check its settings."


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    examples = [Example(_q(w), [_chunk(w)], [_chunk(o) for o in TRAIN if o != w]) for w in TRAIN]
    cfg = TrainConfig(layers=1, max_tokens=64, epochs=8, group=4, batch_queries=4, lr=1e-4, seed=3, torch_threads=1, extra={"test": True})
    model, manifest = train_cross_encoder(examples, cfg, log=lambda _m: None)
    out = export_cross_encoder(model, packaged_model_path() / "tokenizer.json", tmp_path_factory.mktemp("ce"), manifest)
    return model, out


def test_onnx_graph_reproduces_torch_logits(trained) -> None:
    import torch

    from tierwise_rag.cross_encoder_training import encode_pairs, pair_tokenizer

    model, out = trained
    texts = [_chunk(w) for w in HELD] + ["x " * 200]  # the last one is truncated to max_tokens
    ce = CrossEncoderReranker(out["fp32"], max_tokens=64, batch_size=3)
    got = ce.scores(_q(HELD[0]), texts)
    with torch.no_grad():
        want = model(**encode_pairs(pair_tokenizer(out["fp32"] / "tokenizer.json", 64), [(_q(HELD[0]), t) for t in texts]))[:, 0].numpy()
    assert np.allclose(got, want, atol=1e-4), (got, want)
    manifest = json.loads((out["fp32"] / "training.json").read_text())
    assert manifest["layers"] == 1 and manifest["graph"] == "fp32" and manifest["test"] is True and len(manifest["train_log"]) == 8


@pytest.mark.parametrize("graph", ["fp32", "int8"])
def test_trained_reranker_ranks_the_answer_first_on_unseen_things(trained, graph: str) -> None:
    _, out = trained
    ce = CrossEncoderReranker(out[graph], max_tokens=64)
    for w in HELD:
        scores = ce.scores(_q(w), [_chunk(o) for o in HELD])
        assert HELD[int(np.argmax(scores))] == w, (w, scores)


def test_training_lowers_the_loss(trained) -> None:
    _, out = trained
    log = json.loads((out["int8"] / "training.json").read_text())["train_log"]
    assert log[-1]["mean_loss"] < 0.7 * log[0]["mean_loss"], log


def test_fails_on_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one negative"):
        Example("q?", ["answer"], [])
    with pytest.raises(ValueError, match="layers must be within 1..6"):
        train_cross_encoder([Example("q?", ["a"], ["b"])], TrainConfig(layers=7))
    with pytest.raises(ValueError, match="no training examples"):
        train_cross_encoder([], TrainConfig())


def test_bad_model_dir_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="lacks tokenizer.json"):
        CrossEncoderReranker(tmp_path)
