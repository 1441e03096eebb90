"""The ONNX cross-encoder reranker, on a small cross-encoder this test builds (BERT, 2 layers, random
weights, the packaged MiniLM tokenizer) and exports the way sentence-transformers cross-encoders are
exported: the reranker's scores must equal the torch model's logits, and the engine must order the
reranked hits by them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tierwise_rag.documents import RawDocument
from tierwise_rag.embedding import packaged_model_path
from tierwise_rag.rerank import CrossEncoderReranker

pytestmark = [pytest.mark.slow]

PAIRS = [
    ("how do I reset my password?", "Use the reset link on the sign-in page to choose a new password."),
    ("how do I reset my password?", "Invoices are sent on the first business day of each month."),
    ("gpu quota", "GPU quota raised for the eu region. " * 40),  # longer than max_tokens: truncated on the chunk side
]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                     max_position_embeddings=512, num_labels=1)
    model = BertForSequenceClassification(cfg).eval()
    out = tmp_path_factory.mktemp("ce")
    ids = torch.tensor([[101, 2054, 102, 7592, 102]])
    with torch.no_grad():
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out / "model.onnx"),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "attention_mask", "token_type_ids")} | {"logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    shutil.copy(packaged_model_path() / "tokenizer.json", out / "tokenizer.json")
    return model, out


def test_scores_equal_the_torch_logits(tiny_cross_encoder) -> None:
    import torch
    from tokenizers import Tokenizer

    model, path = tiny_cross_encoder
    ce = CrossEncoderReranker(path, max_tokens=64, batch_size=2)
    got = ce.scores(PAIRS[0][0], [p for _, p in PAIRS[:2]])
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(64, strategy="only_second")
    want = []
    for q, p in PAIRS:
        enc = tok.encode(q, p)
        assert len(enc.ids) <= 64
        with torch.no_grad():
            want.append(float(model(input_ids=torch.tensor([enc.ids]), attention_mask=torch.tensor([enc.attention_mask]),
                                    token_type_ids=torch.tensor([enc.type_ids])).logits[0, 0]))
    assert np.allclose(got, want[:2], atol=1e-4), (got, want)
    long = ce.scores(PAIRS[2][0], [PAIRS[2][1], PAIRS[0][1]])  # padded batch with a truncated pair
    assert long[0] == pytest.approx(want[2], abs=1e-4)
    assert got[0] != got[1]  # the pair decides the score


def test_engine_orders_hits_by_cross_encoder_scores(tiny_cross_encoder, make_kb) -> None:
    _, path = tiny_cross_encoder
    ce = CrossEncoderReranker(path, max_tokens=128)
    kb = make_kb(reranker=ce, rerank_depth=8)
    kb.create_collection("platform", "news", "fluid")
    kb.ingest("platform", "news", [RawDocument(f"d{i}", f"topic {i}: " + " ".join(f"word{j}" for j in range(i, i + 12))) for i in range(10)])
    res = kb.retrieve("platform", ["news"], "topic 3 word5", rerank=True, top_k=8)
    assert "rerank_ms" in res.timings_ms and len(res.hits) == 8
    texts = [h.text for h in res.hits]
    direct = ce.scores("topic 3 word5", texts)
    assert [h.score for h in res.hits] == pytest.approx(direct.tolist(), abs=1e-5)
    assert direct.tolist() == sorted(direct.tolist(), reverse=True)


def test_bad_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks model.onnx, tokenizer.json"):
        CrossEncoderReranker(tmp_path)


def test_fused_weight_mixes_the_first_stage_order_back_in(tiny_cross_encoder) -> None:
    from tierwise_rag.rerank import Candidate

    _, path = tiny_cross_encoder
    texts = [p for _, p in PAIRS]
    cands = [Candidate(t, f, 0.0, 0.0) for t, f in zip(texts, [0.9, 0.5, 0.1], strict=True)]
    logits = CrossEncoderReranker(path, max_tokens=64).scores(PAIRS[0][0], texts).astype(np.float64)
    assert CrossEncoderReranker(path, max_tokens=64).rerank(PAIRS[0][0], cands) == pytest.approx(logits.tolist(), abs=1e-6)
    mixed = CrossEncoderReranker(path, max_tokens=64, fused_weight=0.25).rerank(PAIRS[0][0], cands)
    norm = (logits - logits.min()) / (logits.max() - logits.min())
    assert mixed == pytest.approx((0.75 * norm + 0.25 * np.array([1.0, 0.5, 0.0])).tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="fused_weight must be within"):
        CrossEncoderReranker(path, fused_weight=1.0)
