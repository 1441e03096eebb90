"""injection-v2: meaning (static MiniLM embeddings compared with banks of known attack and benign
units) + surface (hashed n-gram logit) + heuristics + channel, combined by a logistic head trained on
source-held-out corpora (``scripts/train_injection_v2.py``).

A text is cut into scoring units: every segment (paragraph / sentence window) and, when there is more
than one or quotes were blanked, the whole text. Each unit is scored; the text's score is the max.
On the user channel quoted spans are blanked in the segments (see :mod:`.channel`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tierwise_guardrails.findings import Finding
from tierwise_guardrails.injection.channel import CHANNELS, Channel, blank_quotes, check_channel
from tierwise_guardrails.injection.detector import InjectionResult
from tierwise_guardrails.injection.embed import StaticEmbedder
from tierwise_guardrails.injection.features import MAX_CHARS, featurize
from tierwise_guardrails.injection.heuristics import heuristic_features, heuristic_hits
from tierwise_guardrails.injection.segment import segments

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "model" / "injection-v2.npz"
NAME = "injection-v2"


def units(text: str, channel: Channel, segment_chars: int = 600) -> list[tuple[int, int, str]]:
    """(start, end, text) of every unit scored for ``text`` on ``channel``."""
    view = blank_quotes(text) if channel == "user" else text
    segs = [(s, e) for s, e in segments(view, segment_chars) if view[s:e].strip()]
    out = [(s, e, view[s:e]) for s, e in segs]
    if len(segs) != 1 or view != text:
        out.append((0, len(text), text[:MAX_CHARS]))
    return out


def similarities(emb: np.ndarray, bank_attack: np.ndarray, bank_benign: np.ndarray, *, exclude: np.ndarray | None = None) -> np.ndarray:
    """Cosine similarity to the nearest known attack unit and the nearest benign unit, and their
    difference: (n, 3). ``exclude`` (n, len(attack)+len(benign)) masks bank entries (training only)."""
    sa, sb = emb @ bank_attack.T, emb @ bank_benign.T
    if exclude is not None:
        sa = np.where(exclude[:, : len(bank_attack)], -1.0, sa)
        sb = np.where(exclude[:, len(bank_attack) :], -1.0, sb)
    a = sa.max(1) if sa.shape[1] else np.zeros(len(emb))
    b = sb.max(1) if sb.shape[1] else np.zeros(len(emb))
    return np.stack([a, b, a - b], 1).astype(np.float32)


def assemble(texts: list[str], channels: list[str], lex_logits: np.ndarray, sims: np.ndarray) -> np.ndarray:
    """The head's input: [lexical logit / 10, heuristic flags, channel one-hot, similarities]."""
    heur = np.array([heuristic_features(t) for t in texts], dtype=np.float32).reshape(len(texts), -1)
    ch = np.zeros((len(texts), len(CHANNELS)), dtype=np.float32)
    ch[np.arange(len(texts)), [CHANNELS.index(c) for c in channels]] = 1.0
    return np.hstack([(np.asarray(lex_logits, dtype=np.float32) / 10.0)[:, None], heur, ch, sims])


class InjectionModelV2:
    def __init__(self, arrays: dict[str, np.ndarray], meta: dict, tokenizer_json: str) -> None:
        self.meta = meta
        self.embedder = StaticEmbedder(arrays["vectors"], arrays["token_weights"], tokenizer_json)
        self.lex_w = arrays["lex_weights"].astype(np.float32)
        self.lex_b = float(arrays["lex_bias"])
        self.mu = arrays["feat_mean"].astype(np.float32)
        self.sd = arrays["feat_std"].astype(np.float32)
        self.layers = [(arrays[f"W{i}"].astype(np.float32), arrays[f"b{i}"].astype(np.float32)) for i in range(int(meta["n_layers"]))]
        self.bank_attack = arrays["bank_attack"].astype(np.float32)
        self.bank_benign = arrays["bank_benign"].astype(np.float32)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "InjectionModelV2":
        p = Path(path) if path else DEFAULT_MODEL_PATH
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
        tok = str(arrays.pop("tokenizer_json"))
        return cls(arrays, meta, tok)

    def lexical_logit(self, text: str) -> float:
        idx, vals = featurize(text)
        return self.lex_b + float(np.dot(self.lex_w[idx], vals)) if idx.size else self.lex_b

    def features(self, texts: list[str], channel: Channel) -> np.ndarray:
        lex = np.array([self.lexical_logit(t) for t in texts], dtype=np.float32)
        return assemble(texts, [channel] * len(texts), lex, similarities(self.embedder.embed(texts), self.bank_attack, self.bank_benign))

    def predict(self, x: np.ndarray) -> np.ndarray:
        h = (x - self.mu) / self.sd
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        # float64 and clipped: a score never rounds to exactly 0 or 1, so a policy "block at 1.0" never fires
        return 1.0 / (1.0 + np.exp(-np.clip(h[:, 0].astype(np.float64), -30.0, 30.0)))

    def score_units(self, texts: list[str], channel: Channel) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return self.predict(self.features(texts, channel))


class InjectionDetectorV2:
    """Per-unit, channel-aware scoring with :class:`InjectionModelV2`. ``detect`` has the v1 signature
    plus ``channel``; heuristic matches are reported as findings but only the model decides the score."""

    def __init__(self, model: InjectionModelV2 | None = None, *, segment_chars: int = 600) -> None:
        self.model = model or InjectionModelV2.load()
        self.segment_chars = segment_chars

    def score(self, text: str, channel: Channel = "user") -> float:
        return self.detect(text, channel=channel, report_threshold=1.1).score

    def detect(self, text: str, report_threshold: float = 0.5, *, channel: str = "user") -> InjectionResult:
        ch = check_channel(channel)
        if not text.strip():
            return InjectionResult(0.0, [])
        us = units(text, ch, self.segment_chars)
        scores = self.model.score_units([u[2] for u in us], ch)
        findings = [
            Finding("PROMPT_INJECTION", s, e, float(sc), f"classifier:{NAME}:{ch}")
            for (s, e, _), sc in zip(us, scores) if sc >= report_threshold
        ]
        if len(findings) > 1:  # the whole-text unit adds nothing when a segment already points at the spot
            findings = [f for f in findings if (f.start, f.end) != (0, len(text))] or findings
        if findings:
            view = blank_quotes(text) if ch == "user" else text
            findings += [Finding("PROMPT_INJECTION", s, e, sc, f"heuristic:{n}") for n, sc, s, e in heuristic_hits(view)]
        return InjectionResult(float(scores.max()) if scores.size else 0.0, findings)
