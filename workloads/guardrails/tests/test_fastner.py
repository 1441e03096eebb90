"""The numpy NER engine must give exactly the entities of spaCy's own ``ner`` component (same weights).

Compared on texts that are not the benchmark's evaluation data: hand-written sentences, paragraphs
of the Debian FAQ (Debian package ``debian-faq``) and hypothesis-generated text.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierwise_guardrails.pii.ner import NerDetector, has_ner_candidate

DEBIAN_FAQ = Path("/usr/share/doc/debian/FAQ/debian-faq.en.txt.gz")

HANDWRITTEN = [
    "My name is Arya Jongman and I live in Paris.",
    "Please ship it to Maria Garcia, 12 Rue de Rivoli, Lyon, France before Monday.",
    "Dr. O'Neil met Jean-Luc Picard in São Paulo; they flew on to Tōkyō and then Nairobi.",
    "Mariya Kanou\n\n800 Ilichova 34\n Suite 348\n Ljubljana\n Slovenia 12534",
    "We moved here from Hvalsø",
    "  leading and   inner    whitespace  with Berlin  and Angela Merkel  ",
    "all lower case: john smith from new york city",
    "ALL CAPS: JOHN SMITH FROM NEW YORK CITY",
    "Microsoft and Google opened offices in Dublin, Ireland, and the Bay Area.",
    "x",
    "Washington",
    "The quick brown fox. Barack Obama was born in Honolulu, Hawaii, in 1961.",
    "Tickets: Alice -> Bob -> Carol; Mount Everest, the Nile and Lake Geneva.",
]


@pytest.fixture(scope="module")
def engines():
    return NerDetector(engine="numpy"), NerDetector(engine="spacy")


def _faq_paragraphs(limit: int = 150) -> list[str]:
    if not DEBIAN_FAQ.is_file():
        return []
    text = gzip.decompress(DEBIAN_FAQ.read_bytes()).decode("utf-8", "replace")
    paras = [re.sub(r"\s+", " ", p).strip() for p in text.split("\n\n")]
    return [p for p in paras if 40 <= len(p) <= 1500][:limit]


def test_numpy_engine_matches_spacy_on_handwritten_text(engines):
    fast, ref = engines
    for text in HANDWRITTEN:
        assert fast.entities(text) == ref.entities(text), text


def test_numpy_engine_matches_spacy_on_debian_faq(engines):
    fast, ref = engines
    paras = _faq_paragraphs()
    if not paras:
        pytest.skip(f"{DEBIAN_FAQ} not installed (Debian package debian-faq)")
    assert sum(len(ref.entities(p)) for p in paras) > 20, "corpus should exercise the model"
    for p in paras:
        assert fast.entities(p) == ref.entities(p), p


words = st.sampled_from(
    ["Anna", "Smith", "london", "Paris", "the", "of", "Mr.", "New", "York", "river", "Lake", "\n", "  ", "-", ",", ".",
     "O'Brien", "Zürich", "42", "ACME", "Inc.", "and", "went", "to", "Dr", "Kowalski", "Straße", "🙂"]
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(words, max_size=40).map(" ".join), st.text(max_size=200)))
def test_numpy_engine_matches_spacy_on_generated_text(engines, text):
    fast, ref = engines
    assert fast.entities(text) == ref.entities(text)


def test_gate_only_skips_texts_without_inner_capitals():
    assert has_ner_candidate("I met John yesterday")
    assert has_ner_candidate("send it to Lyon")
    assert not has_ner_candidate("hello there. how are you?")
    assert not has_ner_candidate("Hello there. Where is it?")
    assert not has_ner_candidate("")


def test_gated_detector_runs_ner_when_a_candidate_exists():
    gated = NerDetector(gate=True)
    assert [f.type for f in gated("I met Barack Obama in Honolulu")] == ["PERSON", "LOCATION"]
    assert gated("the weather is nice today. see you soon") == []


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine"):
        NerDetector(engine="onnx")
