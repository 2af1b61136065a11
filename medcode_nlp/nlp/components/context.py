"""``medcode_context``: the ConText algorithm for assertion of clinical mentions.

For every span of ``doc.ents`` (and of the ``doc.spans`` groups named in ``span_keys``) the
component sets the flags ``is_negated``, ``is_historical``, ``is_hypothetical``, ``is_family``
and ``is_uncertain`` and the single ``span._.assertion`` that drives coding.

ConText, as implemented here (rules in ``resources/context_rules.json``):

* a *trigger* of a category (NEGATED, HISTORICAL, HYPOTHETICAL, FAMILY, UNCERTAIN) opens a
  scope forward, backward or in both directions;
* a *pseudo-trigger* ("no increase", "not only", "history of present illness") is matched
  before the triggers it contains or starts like, and blocks them;
* a *termination* term ("but", "however", "who presents") closes the scope of its category;
* a scope never leaves its sentence (or ``;`` clause) or its section, and is at most
  ``max_scope`` words long (per category, or per rule group);
* a target is modified when it overlaps the scope, or when a trigger lies inside it;
* section hints: mentions in a section whose type has an assertion hint in the sections
  rules (family history -> family, past medical/surgical history -> historical) get that flag.

Header text is not searched for triggers: its meaning comes through the section hint.

``span._.assertion`` is the first set flag in :data:`ASSERTION_PRIORITY`: negated >
hypothetical > family > uncertain > historical > present. Negated and hypothetical mentions
are not the patient's current condition at all; a family mention is about someone else even
when uncertain or historical; an uncertain mention is handled by the setting (outpatient /
inpatient) before history is considered. The flags always carry every category found.

Sentences come from the doc when it has sentence boundaries, else from a punctuation and
line-break heuristic (:func:`split_sentences`); no parser is needed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span

import medcode_nlp.nlp.extensions  # noqa: F401  (registers extensions)
from medcode_nlp.nlp.components.context_rules import (
    ASSERTION_FLAGS,
    ASSERTION_PRIORITY,
    CATEGORIES,
    DEFAULT_SCOPE,
    HINTS_FILE,
    RULES_FILE,
    CategoryMatcher,
    ContextRule,
    parse_context_rules,
)
from medcode_nlp.nlp.components.sections import (
    SectionTuple,
    parse_section_rules,
    section_at,
)
from medcode_nlp.nlp.components.sentences import join_query_marks, split_sentences
from medcode_nlp.resources import read_json

#: Negation triggers that deny the mention they open ("Denies fever" as one span).
_OPENING_DENIALS = frozenset({"denies", "denied", "deny", "denying", "no", "negative for"})


class ContextComponent:
    """spaCy component applying ConText rules and section hints to mentions."""

    def __init__(
        self,
        nlp: Language,
        name: str = "medcode_context",
        *,
        rules_path: str | None = None,
        span_keys: Sequence[str] = ("mentions",),
        use_sections: bool = True,
        sections_path: str | None = None,
    ) -> None:
        self.name = name
        self.rules_path = rules_path
        self.span_keys = list(span_keys)
        self.use_sections = use_sections
        self._data: Any = read_json(rules_path, RULES_FILE)
        sections = read_json(sections_path, "sections.json")
        self.section_hints: dict[str, str] = {
            stype: hint
            for stype, hint in parse_section_rules(
                sections, str(sections_path or "sections.json")
            ).hints.items()
            if hint
        }
        self._build()

    def _build(self) -> None:
        self.rules = parse_context_rules(self._data, str(self.rules_path or RULES_FILE))
        self.matchers = [
            CategoryMatcher(
                cat, self.rules.by_category(cat), self.rules.max_scope.get(cat, DEFAULT_SCOPE)
            )
            for cat in CATEGORIES
        ]

    def targets(self, doc: Doc) -> list[Span]:
        """Spans that get an assertion: ``doc.ents`` then the configured span groups."""
        spans = list(doc.ents)
        for key in self.span_keys:
            if key in doc.spans:
                spans.extend(doc.spans[key])
        return spans

    def __call__(self, doc: Doc) -> Doc:
        targets = self.targets(doc)
        if not targets:
            return doc
        sections: list[SectionTuple] = list(doc._.sections or [])
        ranges = self._sentence_ranges(doc, sections)
        range_starts = [r[0] for r in ranges]
        by_sentence: dict[int, list[Span]] = {}
        for span in targets:
            index = max(bisect.bisect_right(range_starts, span.start) - 1, 0)
            by_sentence.setdefault(index, []).append(span)
        doc_text = doc.text  # built on each access: read it once
        header_chars = self._header_chars(doc_text, sections)
        for index, spans in by_sentence.items():
            found = self._assess_sentence(doc, doc_text, ranges[index], spans, header_chars)
            for span, cats in zip(spans, found, strict=True):
                self._set(span, cats, sections)
        return doc

    def _sentence_ranges(self, doc: Doc, sections: list[SectionTuple]) -> list[tuple[int, int]]:
        if doc.has_annotation("SENT_START"):
            ranges = join_query_marks(doc, [(s.start, s.end) for s in doc.sents])
        else:
            ranges = split_sentences(doc)
        if not sections:
            return ranges
        token_starts = [t.idx for t in doc]
        cuts = sorted({bisect.bisect_left(token_starts, s[0]) for s in sections})
        out: list[tuple[int, int]] = []
        for start, end in ranges:
            inner = cuts[bisect.bisect_right(cuts, start) : bisect.bisect_left(cuts, end)]
            bounds = [start, *inner, end]
            out.extend((a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a)
        return out

    @staticmethod
    def _header_chars(doc_text: str, sections: list[SectionTuple]) -> list[tuple[int, int]]:
        """Character ranges of the header words (not searched for triggers)."""
        spans = []
        for start, _end, _stype, header in sections:
            pos = doc_text.find(header, start, start + len(header) + 16)
            if pos >= 0:
                spans.append((start, pos + len(header)))
        return spans

    def _assess_sentence(
        self,
        doc: Doc,
        doc_text: str,
        bounds: tuple[int, int],
        spans: list[Span],
        header_chars: list[tuple[int, int]],
    ) -> list[set[str]]:
        """Categories found for each span of one sentence."""
        s_tok, e_tok = bounds
        offset = doc[s_tok].idx
        end_char = doc[e_tok - 1].idx + len(doc[e_tok - 1].text)
        text = doc_text[offset:end_char]
        token_starts = [t.idx for t in doc[s_tok:e_tok]]
        cum = [0]
        for token in doc[s_tok:e_tok]:
            cum.append(cum[-1] + (0 if token.is_space or token.is_punct else 1))

        def tokens(start_char: int, end_char_: int) -> tuple[int, int]:
            piece = text[start_char:end_char_]
            start_char += len(piece) - len(piece.lstrip())
            end_char_ -= len(piece) - len(piece.rstrip())
            first = bisect.bisect_right(token_starts, start_char + offset) - 1
            last = bisect.bisect_left(token_starts, end_char_ + offset)
            return max(first, 0), max(last, first + 1)

        header_starts = [h[0] for h in header_chars]

        def in_header(start_char: int) -> bool:
            i = bisect.bisect_right(header_starts, start_char + offset) - 1
            return i >= 0 and start_char + offset < header_chars[i][1]

        results: list[set[str]] = [set() for _ in spans]
        local = [(max(sp.start - s_tok, 0), min(sp.end, e_tok) - s_tok) for sp in spans]
        starts = [sp.start_char - offset for sp in spans]
        n = e_tok - s_tok
        # Spans sorted by start, so that a trigger only looks at the spans near it: a sentence
        # with thousands of mentions and triggers (a long list without full stops) would
        # otherwise cost mentions x triggers.
        by_char = sorted(range(len(spans)), key=starts.__getitem__)
        char_starts = [starts[k] for k in by_char]
        by_token = sorted(range(len(spans)), key=local.__getitem__)
        token_starts_of = [local[k][0] for k in by_token]
        longest = max([0, *(te - ts for ts, te in local)])  # in tokens
        for matcher in self.matchers:
            triggers, pseudo, terms = matcher.find(text)
            # A pseudo-trigger that runs into a mention ("no change in vision" with the mention
            # "change in vision") does not protect it: its part before the mention is matched
            # as a trigger of its own.
            found: list[tuple[ContextRule, int, int, int | None]] = [
                (r, a, b, None) for r, a, b in triggers
            ]
            for a, b in pseudo:
                inside = by_char[bisect.bisect_right(char_starts, a) :
                                 bisect.bisect_left(char_starts, b)]
                for k in sorted(inside):  # spans starting inside the pseudo-trigger
                    start = starts[k]
                    if a < start < b:
                        head = text[a:start].rstrip()
                        rule = matcher.literal_trigger(head)
                        if rule is not None:
                            found.append((rule, a, a + len(head), k))
            if not found:
                continue
            term_toks = sorted(tokens(a, b) for a, b in terms)
            term_starts = [ts for ts, _te in term_toks]
            term_ends = sorted(te for _ts, te in term_toks)
            for rule, a, b, only in found:
                if in_header(a):
                    continue
                t0, t1 = tokens(a, b)
                window = rule.max_scope or matcher.default_scope
                scopes: list[tuple[int, int]] = []
                if rule.direction in ("forward", "bidirectional"):
                    limit = bisect.bisect_right(cum, cum[t1] + window) - 1
                    end = min(n, max(limit, t1))
                    i = bisect.bisect_left(term_starts, t1)  # the first termination after
                    if i < len(term_starts):
                        end = min(end, term_starts[i])
                    scopes.append((t1, end))
                if rule.direction in ("backward", "bidirectional"):
                    start = bisect.bisect_left(cum, cum[t0] - window)
                    i = bisect.bisect_right(term_ends, t0)  # the last termination before
                    if i > 0:
                        start = max(start, term_ends[i - 1])
                    scopes.append((min(start, t0), t0))
                if only is not None:
                    near = [only]
                else:  # spans that can overlap the trigger or its scopes: ts < hi, te > lo
                    lo = min([t0, *(ss for ss, _se in scopes)])
                    hi = max([t1, *(se for _ss, se in scopes)])
                    near = by_token[bisect.bisect_left(token_starts_of, lo - longest) :
                                    bisect.bisect_left(token_starts_of, hi)]
                for k in near:
                    if rule.labels and spans[k].label_ not in rule.labels:
                        continue  # "X was normal" negates a finding, not a test that was done
                    ts, te = local[k]
                    if t0 < te and t1 > ts:
                        # A trigger inside a mention modifies it only when it opens the mention
                        # ("status post CABG", "history of stroke"), and never as negation:
                        # "lungs clear without wheezes" is a finding as written - unless a
                        # denial opens it ("Denies fever" tagged as one mention).
                        if t0 == ts and (matcher.category != "NEGATED"
                                         or rule.text.lower() in _OPENING_DENIALS):
                            results[k].add(matcher.category)
                    elif any(ts < se and te > ss for ss, se in scopes):
                        results[k].add(matcher.category)
        return results

    def _set(self, span: Span, cats: set[str], sections: list[SectionTuple]) -> None:
        flags = {flag: False for flag, _ in CATEGORIES.values()}
        for cat in cats:
            flags[CATEGORIES[cat][0]] = True
        if self.use_sections:
            stype = span._.section
            if stype is None and sections:
                found = section_at(sections, [s[0] for s in sections], span.start_char)
                stype = found[2] if found else None
            hint = self.section_hints.get(stype) if stype else None
            if hint in ASSERTION_FLAGS:
                flags[ASSERTION_FLAGS[hint]] = True
        for flag, value in flags.items():
            setattr(span._, flag, value)
        span._.assertion = assertion_from_flags(flags)

    # Serialization: rules and hints travel with a saved pipeline.
    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return srsly.json_dumps({"rules": self._data, "section_hints": self.section_hints}).encode(
            "utf8"
        )

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> ContextComponent:
        payload = srsly.json_loads(data.decode("utf8"))
        self._data = payload["rules"]
        self.section_hints = dict(payload["section_hints"])
        self._build()
        return self

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / RULES_FILE, self._data)
        srsly.write_json(path / HINTS_FILE, self.section_hints)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> ContextComponent:
        path = Path(path)
        if (path / RULES_FILE).exists():
            self._data = srsly.read_json(path / RULES_FILE)
            self._build()
        if (path / HINTS_FILE).exists():
            self.section_hints = dict(srsly.read_json(path / HINTS_FILE))
        return self


def assertion_from_flags(flags: dict[str, bool]) -> str:
    """The single assertion for a set of flags (see :data:`ASSERTION_PRIORITY`)."""
    for assertion in ASSERTION_PRIORITY:
        if flags.get(ASSERTION_FLAGS[assertion]):
            return assertion
    return "present"


@Language.factory(
    "medcode_context",
    assigns=[
        "span._.assertion",
        "span._.is_negated",
        "span._.is_historical",
        "span._.is_hypothetical",
        "span._.is_family",
        "span._.is_uncertain",
    ],
    default_config={
        "rules_path": None,
        "span_keys": ["mentions"],
        "use_sections": True,
        "sections_path": None,
    },
)
def make_context(
    nlp: Language,
    name: str,
    *,
    rules_path: str | None,
    span_keys: list[str],
    use_sections: bool,
    sections_path: str | None,
) -> ContextComponent:
    """Create the ConText component (``rules_path``/``sections_path`` None = packaged rules)."""
    return ContextComponent(
        nlp,
        name,
        rules_path=rules_path,
        span_keys=span_keys,
        use_sections=use_sections,
        sections_path=sections_path,
    )
