"""Property-based checks of the public API on arbitrary text (hypothesis).

Two coders are exercised: the dictionary coder (no trained models, fast) and the full default
coder of ``medcode_nlp.load()`` (trained NER in ``models/ner``, ranker in ``models/ranker``).
For every generated note the result must be well formed: offsets inside the note and equal to
the quoted text, scores in [0, 1], every code known to the knowledge base, and the same result
on a second call.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

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

SLOW_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The ranker's OpenMP threads spin-wait on each other on a busy 2-core machine, which
    makes a short note cost seconds: the properties do not depend on threads, so use one."""
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime, so that it is limited)

    with threadpool_limits(limits=1):
        yield


def check_result(coder, kb, text: str) -> None:
    """Every invariant of a coding result of ``text``; codes again and compares."""
    result = coder(text)
    for entity in result.entities:
        assert 0 <= entity.start <= entity.end <= len(text)
        assert text[entity.start : entity.end] == entity.text
        for candidate in entity.candidates:
            assert 0.0 <= candidate.score <= 1.0
            assert kb.get(candidate.system, candidate.code) is not None
    for code in result.codes:
        assert 0.0 <= code.score <= 1.0
        assert kb.get(code.system, code.code) is not None
        for evidence in code.evidence:
            assert 0 <= evidence.start <= evidence.end <= len(text)
            assert text[evidence.start : evidence.end] == evidence.text
    for item in result.excluded:
        assert kb.get(item.system, item.code) is not None
        for evidence in item.evidence:
            assert 0 <= evidence.start <= evidence.end <= len(text)
            assert text[evidence.start : evidence.end] == evidence.text
    result.to_json()  # serialisable whatever the note holds
    assert coder(text) == result


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=NOTES)
def test_properties_result_is_valid_and_deterministic(dictionary_coder, kb, text):
    check_result(dictionary_coder, kb, text)


# --------------------------------------------------------------------- full default coder
CLINICAL = st.sampled_from([
    "pneumonia", "Pneumonia of the right lower lobe.", "denies chest pain", "no fever",
    "CHF", "HTN", "s/p CABG", "history of colon cancer", "mother had breast cancer",
    "type 2 diabetes mellitus", "hip fracture", "rule out pulmonary embolism",
    "acute on chronic systolic congestive heart failure", "COPD exacerbation",
    "chronic kidney disease stage 3", "ceftriaxone", "appendectomy", "knee replacement",
    "ASSESSMENT:", "PMH:", "HPI:", "PLAN:", "Family history:", "1.", "2)", "- ", "* ",
])
HTML = st.sampled_from([
    '<div class="x">', "</div>", "<![CDATA[", "]]>", "&amp;", "&lt;", "&gt;", "&#x41;",
    "&nbsp;", "<br/>", "<p>", "</p>", '<?xml version="1.0"?>', "<!-- note -->",
    '<span style="color:red">', "</span>", "<td>", "<li>", "<script>", "</script>",
])
RTL = st.one_of(
    st.sampled_from(["\u200f", "\u200e", "\u202b", "\u202e", "\u202c", "\u2067", "\u2069",
                     "التهاب رئوي", "ضغط الدم", "דלקת ריאות", "סוכרת", "\u061c"]),
    st.text(st.characters(min_codepoint=0x0590, max_codepoint=0x06FF), min_size=1, max_size=20),
)
CONTROL = st.one_of(
    st.sampled_from(["\x00", "\r\n", "\r", "\t", "\x0b", "\x0c", "\x1b", "\x7f", "\x85",
                     "\u2028", "\u2029", "\ufeff", "\u200b"]),
    st.text(st.characters(categories=["Cc", "Cf"]), min_size=1, max_size=5),
)
COMBINING = st.text(st.characters(categories=["Mn", "Mc", "Me"]), min_size=1, max_size=8)
EMOJI = st.one_of(
    st.sampled_from(["🙂", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "❤️", "🇺🇸", "🤒", "💊"]),
    st.text(st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), min_size=1,
            max_size=5),
)
PUNCTUATION = st.builds(lambda mark, n: mark * n, st.sampled_from(list("!.-?*=#/_~;:,|")),
                        st.integers(2, 300))
LONG_TOKEN = st.builds(
    lambda seed, n: (seed * (n // len(seed) + 1))[:n],
    st.one_of(st.sampled_from(["pneumonia", "a", "x1", "é", "CHF", "no"]),
              st.text(st.characters(categories=["L", "N", "M", "S"]), min_size=1, max_size=12)),
    st.integers(2000, 5000),
)
PIECE = st.one_of(
    CLINICAL, CLINICAL, CLINICAL, HTML, RTL, CONTROL, COMBINING, EMOJI, PUNCTUATION,
    st.text(max_size=30),
)
SEPARATOR = st.sampled_from([" ", " ", "", "\n", "\r\n", "\t", "  ", "\n\n", ". "])
MIXED_NOTES = st.lists(st.tuples(PIECE, SEPARATOR), max_size=40).map(
    lambda parts: "".join(piece + sep for piece, sep in parts))
LONG_NOTES = st.lists(st.one_of(LONG_TOKEN, CLINICAL, PUNCTUATION), min_size=1, max_size=4).map(
    " ".join)


@settings(SLOW_SETTINGS, max_examples=80)
@given(text=MIXED_NOTES)
@example(text="Pt\x00 denies chest pain.\r\nHx of CHF\t<div class=\"x\">pneumonia</div>&amp;")
@example(text="<![CDATA[ type 2 diabetes ]]>\u202eالتهاب رئوي\u202c HTN 🙂 e\u0301\u0301\u0301")
@example(text="ASSESSMENT:\r\n1. Pneumonia!!!!\r\n2. CHF....\r\n---- \u200fדלקת ריאות\u200f")
@example(text="no " * 200)
def test_default_coder_on_mixed_unicode(default_coder, kb, text):
    check_result(default_coder, kb, text)


@settings(SLOW_SETTINGS, max_examples=12)
@given(text=LONG_NOTES)
@example(text="pneumonia" * 500 + " denies chest pain " + "x" * 3000)
def test_default_coder_on_long_tokens(default_coder, kb, text):
    check_result(default_coder, kb, text)
