"""BM25 analysis options and chunk→document aggregation before fusion."""

from __future__ import annotations

import pytest

from tierwise_rag.documents import RawDocument
from tierwise_rag.engine import FusionConfig
from tierwise_rag.lexical import Analyzer, BM25Index, LexicalConfig

FILLER = "Volunteers maintain thousands of packages across many architectures and mirrors worldwide every single day"


def test_long_stop_list_drops_question_words() -> None:
    q = "How can I find which package provides a file?"
    assert Analyzer("en").terms(q)[:3] == ["how", "can", "i"]
    assert Analyzer("en_plus").terms(q) == ["find", "packag", "provid", "file"]
    assert Analyzer("en_plus", stem=False).terms(q) == ["find", "package", "provides", "file"]
    assert Analyzer("none").terms("what is it") == ["what", "is", "it"]


def test_question_words_no_longer_outscore_content_words() -> None:
    texts = ["How do you do? How nice. How how how.", "Use dpkg -S to find the package that owns a file."]
    q = "How do I find the package of a file?"
    short = BM25Index(texts, LexicalConfig(stopwords="en")).scores(q)
    long_ = BM25Index(texts, LexicalConfig(stopwords="en_plus")).scores(q)
    assert short[0] > 0  # "how" and "do" match the chatter
    assert long_[0] == 0 and long_[1] > 0


def test_bm25_parameters_are_applied() -> None:
    texts = ["kernel " * 10 + FILLER, "kernel " + FILLER]
    flat = BM25Index(texts, LexicalConfig(k1=0.1)).scores("kernel")
    steep = BM25Index(texts, LexicalConfig(k1=5.0)).scores("kernel")
    assert steep[0] / steep[1] > flat[0] / flat[1]  # higher k1 rewards term frequency more
    with pytest.raises(ValueError):
        LexicalConfig(b=1.5)


def _aggregation_corpus() -> list[RawDocument]:
    # "spread": three chunks, each mentioning the kernel once; "dense": one chunk saying it three times.
    spread = "\n\n".join(f"Section {i}. The kernel is mentioned here once. {FILLER}. {FILLER}. {FILLER}." for i in range(3))
    return [
        RawDocument("spread", spread),
        RawDocument("dense", f"Kernel, kernel, kernel: upgrade the kernel. {FILLER}."),
        RawDocument("other", f"Nothing relevant at all. {FILLER}."),
    ]


def _doc_order_from_chunks(kb, query: str, how: str) -> list[str]:
    snap = kb._active["kb"]
    agg: dict[str, float] = {}
    for score, payload in zip(snap.bm25.scores(query), snap.payloads, strict=True):
        if score > 0:
            d = payload["doc_id"]
            agg[d] = (max(agg[d], score) if how == "max" else agg[d] + score) if d in agg else float(score)
    return sorted(agg, key=lambda d: -agg[d])


@pytest.mark.parametrize("how", ["max", "sum"])
def test_aggregate_ranks_documents_by_max_or_sum_of_chunk_scores(kb, how: str) -> None:
    kb.create_collection("platform", "kb", "anchored", fusion=FusionConfig(aggregate=how))
    kb.ingest("platform", "kb", _aggregation_corpus(), promote=True)
    assert len([p for p in kb._active["kb"].payloads if p["doc_id"] == "spread"]) == 3
    res = kb.retrieve("platform", ["kb"], "kernel", top_k=10, mode="bm25")
    docs = [h.doc_id for h in res.hits]
    order = list(dict.fromkeys(docs))
    assert order == _doc_order_from_chunks(kb, "kernel", how)
    assert docs == sorted(docs, key=order.index)  # a document's chunks are contiguous
    assert len(docs) == 4  # every candidate chunk is still returned


def test_max_and_sum_disagree_on_a_spread_out_document(kb) -> None:
    kb.create_collection("platform", "kb", "anchored")
    kb.ingest("platform", "kb", _aggregation_corpus(), promote=True)
    assert _doc_order_from_chunks(kb, "kernel", "max")[0] == "dense"
    assert _doc_order_from_chunks(kb, "kernel", "sum")[0] == "spread"
    kb.update_collection("platform", "kb", fusion=FusionConfig(aggregate="sum"))
    assert kb.retrieve("platform", ["kb"], "kernel", mode="bm25").hits[0].doc_id == "spread"
    kb.update_collection("platform", "kb", fusion=FusionConfig(aggregate="max"))
    assert kb.retrieve("platform", ["kb"], "kernel", mode="bm25").hits[0].doc_id == "dense"


def test_hybrid_aggregation_fuses_document_lists(kb) -> None:
    kb.create_collection("platform", "kb", "anchored", fusion=FusionConfig(aggregate="max", rrf_k=1.0))
    kb.ingest("platform", "kb", _aggregation_corpus(), promote=True)
    res = kb.retrieve("platform", ["kb"], "upgrade the kernel", top_k=10, rerank=True)
    docs = [h.doc_id for h in res.hits]
    assert set(docs) >= {"spread", "dense"}
    assert all(h.ranks["bm25"] is not None or h.ranks["dense"] is not None for h in res.hits)
