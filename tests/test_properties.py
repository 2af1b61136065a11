"""Property-based checks of the public API on arbitrary text (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CLINICAL_WORDS = st.sampled_from([
    "pneumonia", "denies", "chest pain", "CHF", "no", "history of", "mother had",
    "breast cancer", "fracture", "hip", "\r\n", "\t", "<b>", "</b>", "?", "...", "é", "🙂",
    "\u0301", "\u202e", "\x00", "ASSESSMENT:", "PMH:", "-", "/", "s/p", "type 2 diabetes",
])
NOTES = st.one_of(
    st.text(max_size=400),
    st.lists(CLINICAL_WORDS, max_size=60).map(" ".join),
    st.lists(CLINICAL_WORDS, max_size=60).map("".join),
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=NOTES)
def test_properties_result_is_valid_and_deterministic(dictionary_coder, kb, text):
    result = dictionary_coder(text)
    for entity in result.entities:
        assert 0 <= entity.start <= entity.end <= len(text)
        assert text[entity.start : entity.end] == entity.text
    for code in result.codes:
        assert 0.0 <= code.score <= 1.0
        assert kb.get(code.system, code.code) is not None
        for evidence in code.evidence:
            assert text[evidence.start : evidence.end] == evidence.text
    for item in result.excluded:
        assert kb.get(item.system, item.code) is not None
    assert dictionary_coder(text) == result
