"""Features of a note for the site model (:mod:`medcode_nlp.ranking.site_model`).

Word 1-2 grams with the words inside a negation, uncertainty or history scope marked
(``neg:``/``unc:``/``hist:``), the same n-grams qualified by their section group (reason for
the exam, past history, findings, diagnosis), the base coder's codes and scores, and its
entities' candidate codes and texts keyed by the assertion the context component gave them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.schema import CodingResult

#: Section types of the sections component, grouped the way a coder reads a note.
SECTION_GROUPS: dict[str, tuple[str, ...]] = {
    "reason": ("chief_complaint", "history_of_present_illness", "subjective",
               "reason_for_admission", "reason_for_consultation", "indications",
               "clinical_history"),
    "past": ("past_medical_history", "past_surgical_history", "obstetric_gynecologic_history",
             "family_history", "social_history", "medications", "discharge_medications",
             "allergies", "immunizations"),
    "exam": ("review_of_systems", "physical_exam", "vital_signs", "objective", "laboratory",
             "imaging", "comparison", "findings", "operative_findings", "procedure_details",
             "procedures", "hospital_course"),
    "dx": ("impression", "assessment", "assessment_and_plan", "diagnoses", "admission_diagnoses",
           "discharge_diagnoses", "preoperative_diagnosis", "postoperative_diagnosis",
           "differential_diagnosis", "problem_list", "pathology"),
}
_GROUP_OF = {stype: group for group, types in SECTION_GROUPS.items() for stype in types}

NEGATION_TRIGGERS = ("no", "not", "without", "negative for", "free of", "absence of",
                     "absent", "resolved", "resolution of", "denies", "denied", "ruled out",
                     "no evidence of", "never", "none")
UNCERTAIN_TRIGGERS = ("likely", "unlikely", "possible", "possibly", "probable", "probably",
                      "may", "might", "could", "questionable", "question of", "suspicious",
                      "suspected", "suspect", "suspicion", "concern", "concerning", "versus",
                      "vs", "cannot be excluded", "can not be excluded", "cannot exclude",
                      "not excluded", "differential", "rule out", "r/o", "evaluate",
                      "evaluation", "assess", "consider", "worrisome", "suggestive", "suggest",
                      "suggests")
HISTORY_TRIGGERS = ("history of", "hx of", "h/o", "prior", "previous", "previously", "past",
                    "status post", "s/p", "post")
#: Uncertainty triggers that follow what they qualify ("atelectasis versus pneumonia",
#: "pneumonia cannot be excluded"): the words before them in the sentence are marked too.
POST_UNCERTAIN_TRIGGERS = ("versus", "vs", "cannot be excluded", "can not be excluded",
                           "not excluded", "not be excluded", "is suspected", "is likely",
                           "is possible", "is questioned", "is not excluded")
SCOPE_ENDS = frozenset({"but", "however", "although", "though", "except", "aside", "apart",
                        "otherwise", "whereas", "yet", "which", "who"})

_TOKEN = re.compile(r"[a-z][a-z'/]*[a-z]|[a-z]|\d+(?:\.\d+)?", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.;:!?](?=\s|$)|\n")


def _phrases(triggers: tuple[str, ...]) -> list[tuple[str, ...]]:
    return sorted((tuple(t.split()) for t in triggers), key=len, reverse=True)


_NEG = _phrases(NEGATION_TRIGGERS)
_UNC = _phrases(UNCERTAIN_TRIGGERS)
_HIST = _phrases(HISTORY_TRIGGERS)
_POST = _phrases(POST_UNCERTAIN_TRIGGERS)


@dataclass(slots=True)
class Token:
    """A word of the note with its character span, section group and scope mark."""

    word: str
    start: int
    end: int
    group: str
    mark: str = ""  # "", "neg", "unc" or "hist"
    sentence: int = 0


def _section_groups(text: str) -> list[tuple[int, int, str]]:
    from medcode_nlp.nlp.components.sections import SectionDetector, load_section_rules

    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = SectionDetector(load_section_rules())
    return [(s, e, _GROUP_OF.get(stype, "other")) for s, e, stype, _ in _DETECTOR.find(text)]


_DETECTOR: Any = None


def note_tokens(text: str, backward: bool = False) -> list[Token]:
    """The words of ``text``, each with its section group and negation/uncertainty mark;
    ``backward``: the words before a post-posed uncertainty trigger are marked too."""
    sections = _section_groups(text)
    ends = [m.start() for m in _SENTENCE_END.finditer(text)]
    tokens: list[Token] = []
    sentence, section = 0, 0
    for match in _TOKEN.finditer(text):
        while sentence < len(ends) and ends[sentence] < match.start():
            sentence += 1
        while section < len(sections) and sections[section][1] <= match.start():
            section += 1
        inside = section < len(sections) and sections[section][0] <= match.start()
        word = match.group().lower()
        word = "#" if word[0].isdigit() else word
        tokens.append(Token(word, match.start(), match.end(),
                            sections[section][2] if inside else "other", sentence=sentence))
    _mark_scopes(tokens)
    if backward:
        _mark_backward(tokens)
    return tokens


def _trigger_at(tokens: list[Token], i: int, phrases: list[tuple[str, ...]]) -> int:
    """Length of the trigger phrase starting at token ``i`` (0 if none)."""
    for phrase in phrases:
        n = len(phrase)
        window = tokens[i:i + n]
        if (len(window) == n and all(t.word == w for t, w in zip(window, phrase, strict=True))
                and window[-1].sentence == tokens[i].sentence):
            return n
    return 0


def _mark_scopes(tokens: list[Token]) -> None:
    """Mark the words after a trigger, up to the sentence end or a scope-ending word."""
    mark, sentence, i = "", -1, 0
    while i < len(tokens):
        token = tokens[i]
        if token.sentence != sentence or token.word in SCOPE_ENDS:
            mark, sentence = "", token.sentence
        found = {kind: _trigger_at(tokens, i, phrases)
                 for kind, phrases in (("unc", _UNC), ("neg", _NEG), ("hist", _HIST))}
        kind = max(found, key=lambda k: found[k])
        if found[kind]:
            mark = kind if not mark or kind != "hist" else mark
            i += found[kind]
            continue
        token.mark = mark
        i += 1


def _mark_backward(tokens: list[Token]) -> None:
    """Mark ``unc`` the unmarked words before a post-posed uncertainty trigger, back to the
    sentence start or a scope-ending word."""
    for i in range(len(tokens)):
        if not _trigger_at(tokens, i, _POST):
            continue
        j = i - 1
        while j >= 0 and tokens[j].sentence == tokens[i].sentence \
                and tokens[j].word not in SCOPE_ENDS:
            tokens[j].mark = tokens[j].mark or "unc"
            j -= 1


@dataclass(slots=True)
class NoteFeatures:
    """One note's feature values and, for features tied to words, their first note span."""

    values: dict[str, float] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, name: str, value: float, span: tuple[int, int] | None = None) -> None:
        if value > self.values.get(name, 0.0):
            self.values[name] = value
        if span is not None and name in self.values and name not in self.spans:
            self.spans[name] = span


def _key(system: str, code: str) -> str:
    return f"{system}|{code_key(code)}"


def note_features(text: str, result: CodingResult, pairs: bool = False,
                  backward: bool = False) -> NoteFeatures:
    """Features of one note: marked n-grams (plain and per section group) and base signals;
    ``pairs``: also each (reason-for-exam word, diagnosis-section word) pair of the note;
    ``backward``: post-posed uncertainty triggers mark the words before them too."""
    features = NoteFeatures()
    tokens = note_tokens(text, backward=backward)
    words = [f"{t.mark}:{t.word}" if t.mark else t.word for t in tokens]
    if pairs:
        reason = {w for t, w in zip(tokens, words, strict=True) if t.group == "reason"}
        dx = {w for t, w in zip(tokens, words, strict=True) if t.group == "dx"}
        for first in reason:
            for second in dx:
                features.add(f"pair:{first}&{second}", 1.0)
    for i, token in enumerate(tokens):
        grams = [(words[i], token.end)]
        if i + 1 < len(tokens) and tokens[i + 1].sentence == token.sentence:
            grams.append((f"{words[i]} {words[i + 1]}", tokens[i + 1].end))
        for gram, end in grams:
            features.add(f"w:{gram}", 1.0, (token.start, end))
            features.add(f"w@{token.group}:{gram}", 1.0, (token.start, end))
    for code in result.codes:
        key = _key(code.system, code.code)
        span = (code.evidence[0].start, code.evidence[0].end) if code.evidence else None
        features.add(f"base:{key}", float(code.score), span)
        features.add(f"basecat:{code.system}|{code_key(code.code)[:3]}", float(code.score))
    for entity in result.entities:
        group = _GROUP_OF.get(entity.section or "", "other")
        span = (entity.start, entity.end)
        features.add(f"ent:{entity.assertion}:{' '.join(entity.text.lower().split())}", 1.0, span)
        for cand in entity.candidates[:3]:
            key = _key(cand.system, cand.code)
            features.add(f"cand:{entity.assertion}:{key}", float(cand.score), span)
            features.add(f"cand:{entity.assertion}@{group}:{key}", float(cand.score), span)
    return features


def weighted(values: dict[str, float], weights: dict[str, float]) -> dict[str, float]:
    """``values`` with each feature whose name starts with a key of ``weights`` scaled by it."""
    if not weights:
        return values
    prefixes = tuple(weights)
    return {name: value * weights[next(p for p in prefixes if name.startswith(p))]
            if name.startswith(prefixes) else value for name, value in values.items()}


def base_decisions(features: list[NoteFeatures], labels: list[str]) -> np.ndarray:
    """1 where the base coder put the label code (``system|key``) on a note's main list."""
    return np.array([[float(f"base:{label}" in f.values) for label in labels]
                     for f in features]).reshape(len(features), len(labels))


def as_int32(matrix: Any) -> Any:
    """A CSR matrix with 32-bit indices (liblinear refuses 64-bit ones)."""
    matrix = matrix.tocsr()
    matrix.indices = matrix.indices.astype(np.int32)
    matrix.indptr = matrix.indptr.astype(np.int32)
    return matrix
