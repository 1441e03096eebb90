"""Score candidate / base / production adapters on the eval and guard splits (greedy decoding), then
let ``gate.decide`` rule. Needs the ``train`` extra.

Target of an example: its ``reference`` (gold answer) when recorded, else the teacher's response —
distillation's target. The teacher row is the recorded teacher answers scored against the
references (only where a reference exists), i.e. the ceiling the student is compared with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tierwise_distill.dataset import load_split
from tierwise_distill.gate import GateConfig, GateReport, SplitScores, decide
from tierwise_distill.train import render_prompt


def normalize_answer(s: str) -> str:
    return " ".join(s.strip().split("\n", 1)[0].split()).lower()


def exact_match(pred: str, target: str) -> float:
    return 1.0 if normalize_answer(pred) == normalize_answer(target) else 0.0


def greedy(model: Any, tok: Any, prompt: str, max_new_tokens: int) -> str:
    import torch

    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(next(model.parameters()).device)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def _target(ex: dict[str, Any]) -> str:
    return ex.get("reference") or ex["response"]


def score(model: Any, tok: Any, examples: list[dict[str, Any]], max_new_tokens: int) -> tuple[float, list[str]]:
    if not examples:
        return 0.0, []
    preds = [greedy(model, tok, render_prompt(tok, e["messages"]), max_new_tokens) for e in examples]
    return sum(exact_match(p, _target(e)) for p, e in zip(preds, examples, strict=True)) / len(examples), preds


def teacher_score(examples: list[dict[str, Any]]) -> float | None:
    with_ref = [e for e in examples if e.get("reference")]
    if not with_ref:
        return None
    return sum(exact_match(e["response"], e["reference"]) for e in with_ref) / len(with_ref)


def evaluate(base_model: str | Path, candidate: str | Path, dataset_dir: str | Path, *,
             production: str | Path | None = None, candidate_label: str = "candidate",
             production_label: str | None = None, gate: GateConfig | None = None,
             max_new_tokens: int = 16, num_threads: int | None = None) -> GateReport:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gate = gate or GateConfig()
    if num_threads:
        torch.set_num_threads(num_threads)
    tok = AutoTokenizer.from_pretrained(base_model)
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(candidate), adapter_name="candidate")
    if production is not None:
        model.load_adapter(str(production), adapter_name="production")
    model.eval()
    splits = {"eval": load_split(dataset_dir, "eval"), "guard": load_split(dataset_dir, "guard")}
    results: dict[str, dict[str, float | None]] = {}
    samples: list[dict[str, str]] = []
    for split, exs in splits.items():
        if not exs:
            continue
        r: dict[str, float | None] = {}
        model.set_adapter("candidate")
        r["candidate"], preds = score(model, tok, exs, max_new_tokens)
        if split == "eval":
            samples = [{"target": _target(e), "candidate": p} for e, p in zip(exs[:5], preds[:5], strict=False)]
        with model.disable_adapter():
            r["base"], _ = score(model, tok, exs, max_new_tokens)
        if production is not None:
            model.set_adapter("production")
            r["production"], _ = score(model, tok, exs, max_new_tokens)
        r["teacher"] = teacher_score(exs)
        results[split] = r
    ev = results.get("eval")
    if ev is None:
        raise ValueError(f"dataset {dataset_dir} has no eval split")
    ev_scores = SplitScores(n=len(splits["eval"]), **ev)
    guard = SplitScores(n=len(splits["guard"]), **results["guard"]) if "guard" in results else None
    return decide(gate, ev_scores, guard, candidate=candidate_label,
                  production=production_label if production is not None else None,
                  details={"samples": samples, "max_new_tokens": max_new_tokens})
