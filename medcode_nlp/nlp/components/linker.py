"""``medcode_linker``: candidate codes for every entity, from the knowledge-base index.

Each entity is searched under its own text, its abbreviation long form and its lexicon
expansions, in the code systems that fit its label; the best similarity per code is kept.
Candidates are stored in ``span._.candidates`` best first, at most ``top_k`` per code
system (similarity scores here; the ranker turns them into probabilities).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span

import medcode_nlp.nlp.extensions  # noqa: F401  (registers extensions)
from medcode_nlp.codesets.registry import systems_for_label
from medcode_nlp.kb.cache import shared_index, shared_kb
from medcode_nlp.nlp.components.serial import directory_from_bytes, directory_to_bytes
from medcode_nlp.nlp.lexicon import Lexicon, load_lexicon
from medcode_nlp.schema import Candidate

#: Words that, right before a mention, qualify it ("type 2 | diabetes", "left | hip fracture").
MODIFIERS = frozenset(
    "type 1 2 i ii left right bilateral acute chronic subacute severe mild moderate recurrent "
    "primary secondary essential unstable stable malignant benign open closed displaced".split()
)


def with_modifiers(span: Span, limit: int = 3) -> str | None:
    """The mention extended left over the modifier words just before it, if there are any."""
    start = span.start
    while start > 0 and span.start - start < limit and span.doc[start - 1].lower_ in MODIFIERS:
        start -= 1
    if start == span.start:
        return None
    return span.doc[start : span.end].text


def query_variants(span: Span, lexicon: Lexicon) -> list[str]:
    """The texts an entity is searched under: itself, itself with the modifier words before
    it, its long form, lexicon expansions."""
    variants = [span.text]
    extended = with_modifiers(span)
    if extended:
        variants.append(extended)
    if span._.expansion:
        variants.append(str(span._.expansion))
    variants.extend(lexicon.expand(span.text))
    seen: set[str] = set()
    unique = []
    for text in variants:
        key = text.strip().lower()
        if key and key not in seen:
            seen.add(key)
            unique.append(text.strip())
    return unique


def top_per_system(candidates: list[Candidate], top_k: int) -> list[Candidate]:
    """The first ``top_k`` candidates of each code system, order kept (a mention searched in
    two systems keeps each one's best: HCPCS items never push ICD-10-PCS codes out)."""
    taken: dict[str, int] = defaultdict(int)
    kept = []
    for candidate in candidates:
        if taken[candidate.system] < top_k:
            taken[candidate.system] += 1
            kept.append(candidate)
    return kept


class CodeLinker:
    """Attach ranked candidate codes to ``doc.ents``."""

    def __init__(
        self,
        nlp: Language,
        name: str,
        *,
        kb_path: str | None,
        systems: list[str] | None,
        top_k: int,
        min_similarity: float,
    ) -> None:
        self.name = name
        self.kb_path = kb_path
        self.systems = systems
        self.top_k = top_k
        self.min_similarity = min_similarity

    @property
    def lexicon(self) -> Lexicon:
        """The packaged lexicon (``load_lexicon`` caches it for every component)."""
        return load_lexicon()

    def systems_for(self, label: str, available: list[str]) -> list[str]:
        """Code systems searched for an entity label."""
        wanted = systems_for_label(label) or ("icd10cm",)
        chosen = [s for s in wanted if s in available]
        if self.systems is not None:
            chosen = [s for s in chosen if s in self.systems]
        return chosen

    def __call__(self, doc: Doc) -> Doc:
        self.link(list(doc.ents))
        return doc

    def link(self, spans: list[Span]) -> None:
        """Search candidates for the spans, batched per code system."""
        found = self.candidates_for(
            [(query_variants(span, self.lexicon), span.label_) for span in spans]
        )
        for span, candidates in zip(spans, found, strict=True):
            span._.candidates = candidates

    def candidates_for(self, queries: list[tuple[list[str], str]]) -> list[list[Candidate]]:
        """Ranked candidates for each (text variants, label) query."""
        kb = shared_kb(self.kb_path)
        available = kb.systems
        batched: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for i, (variants, label) in enumerate(queries):
            for system in self.systems_for(label, available):
                batched[system].extend((i, text) for text in variants)
        best: list[dict[tuple[str, str], tuple[float, int]]] = [{} for _ in queries]
        for system, items in batched.items():
            index = shared_index(self.kb_path, system)
            hits = index.search([t for _, t in items], top_k=self.top_k,
                                min_score=self.min_similarity)
            for (i, _), results in zip(items, hits, strict=True):
                for hit in results:
                    key = (system, hit.code)
                    if key not in best[i] or hit.score > best[i][key][0]:
                        best[i][key] = (hit.score, hit.alias_id)
        alias_info = kb.alias_texts(a for b in best for _, a in b.values())
        output = []
        for found in best:
            candidates = []
            for (system, code), (score, alias_id) in found.items():
                entry = kb.get(system, code)
                if entry is None:
                    continue
                alias_text, alias_kind = alias_info.get(alias_id, ("", ""))
                candidates.append(
                    Candidate(code=code, system=system, description=entry.description,
                              score=round(float(score), 4), billable=entry.billable,
                              alias=alias_text, alias_kind=alias_kind,
                              similarity=round(float(score), 4))
                )
            candidates.sort(key=lambda c: (-c.score, not c.billable, c.code))
            output.append(top_per_system(candidates, self.top_k))
        return output

    # Serialization: the knowledge base travels as a reference (medcode_nlp.kb.ref), found
    # again (or rebuilt) on load; the settings are in the pipeline's config.
    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        from medcode_nlp.kb.ref import write_reference

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_reference(path, self.kb_path)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> CodeLinker:
        from medcode_nlp.kb.ref import read_reference

        found, kb_path = read_reference(Path(path), self.kb_path, self.name)
        if found:
            self.kb_path = kb_path
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return directory_to_bytes(self.to_disk)

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> CodeLinker:
        directory_from_bytes(data, self.from_disk)
        return self


@Language.factory(
    "medcode_linker",
    assigns=["span._.candidates"],
    default_config={"kb_path": None, "systems": None, "top_k": 20, "min_similarity": 0.3},
)
def make_linker(
    nlp: Language,
    name: str,
    kb_path: str | None,
    systems: list[str] | None,
    top_k: int,
    min_similarity: float,
) -> CodeLinker:
    """Factory of the candidate linker."""
    return CodeLinker(nlp, name, kb_path=kb_path, systems=systems, top_k=top_k,
                      min_similarity=min_similarity)
