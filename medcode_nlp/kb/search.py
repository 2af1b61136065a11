"""Term search and code lookup over the knowledge base (used by the CLI and the API)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from medcode_nlp.codesets.base import mention_label
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.kb.cache import shared_index, shared_kb
from medcode_nlp.nlp.lexicon import load_lexicon

#: Codes per query and system re-ordered by the term ranker (as in its training).
RANKED_POOL = 20


def search_terms(
    queries: list[str],
    systems: list[str] | None = None,
    top_k: int = 10,
    kb_path: str | Path | None = None,
    ranker: Any = None,
) -> list[list[dict[str, Any]]]:
    """Ranked candidates for each query (lexicon expansions searched too), best first.

    ``score`` is the n-gram similarity; with a ``ranker`` (a ``RankerModel``, e.g.
    ``load_default_ranker()``), the best ``RANKED_POOL`` codes of each system are re-ordered by
    its probability that the code is the term's (its term ranker, trained on index terms), and
    ``score`` is that probability, ``similarity`` the n-gram one.
    """
    kb = shared_kb(kb_path)
    chosen = systems or kb.systems
    for system in chosen:
        if system not in kb.systems:
            raise InputError(Errors.E005.format(system=system, known=", ".join(kb.systems)))
    lexicon = load_lexicon()
    variants = [[q, *lexicon.expand(q)] for q in queries]
    flat = [(i, text) for i, texts in enumerate(variants) for text in texts]
    best: list[dict[tuple[str, str], float]] = [{} for _ in queries]
    aliases: list[dict[tuple[str, str], int]] = [{} for _ in queries]
    depth = max(top_k, RANKED_POOL) if ranker is not None else top_k
    for system in chosen:
        hits = shared_index(kb_path, system).search([t for _, t in flat], top_k=depth)
        for (i, _), found in zip(flat, hits, strict=True):
            for hit in found:
                key = (system, hit.code)
                if hit.score > best[i].get(key, -1.0):
                    best[i][key] = hit.score
                    aliases[i][key] = hit.alias_id
    if ranker is not None:
        return [_ranked(kb, query, scores, found, ranker, top_k)
                for query, scores, found in zip(queries, best, aliases, strict=True)]
    results = []
    for scores in best:
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0][1]))[:top_k]
        rows = []
        for (system, code), score in ranked:
            entry = kb.get(system, code)
            if entry is not None:
                rows.append({"code": code, "system": system, "description": entry.description,
                             "score": round(score, 4), "billable": entry.billable})
        results.append(rows)
    return results


def _ranked(kb: Any, query: str, scores: dict[tuple[str, str], float],
            alias_ids: dict[tuple[str, str], int], ranker: Any, top_k: int
            ) -> list[dict[str, Any]]:
    """One query's codes re-ordered by the ranker, per system, then merged by probability."""
    from medcode_nlp.ranking.mention_features import MentionContext
    from medcode_nlp.schema import Candidate

    texts = kb.alias_texts(alias_ids.values())
    rows: list[dict[str, Any]] = []
    for system in sorted({s for s, _ in scores}):
        ranked = sorted(((code, score) for (s, code), score in scores.items() if s == system),
                        key=lambda item: (-item[1], item[0]))[:RANKED_POOL]
        candidates = []
        for code, score in ranked:
            entry = kb.get(system, code)
            if entry is None:
                continue
            alias, kind = texts.get(alias_ids[(system, code)], ("", ""))
            candidates.append(Candidate(code, system, entry.description, round(score, 4),
                                        entry.billable, alias=alias, alias_kind=kind,
                                        similarity=round(score, 4)))
        if not candidates:
            continue
        # the label a mention of the best-matching code would carry (HCPCS: drug or item)
        mention = MentionContext(text=query, label=mention_label(system, candidates[0].code))
        for candidate, p in zip(candidates, ranker.score(mention, candidates), strict=True):
            rows.append({"code": candidate.code, "system": system,
                         "description": candidate.description, "score": round(float(p), 4),
                         "similarity": candidate.similarity, "billable": candidate.billable})
    rows.sort(key=lambda r: (-r["score"], -r["similarity"], r["code"]))
    return rows[:top_k]


def describe_code(
    code: str, system: str | None = None, kb_path: str | Path | None = None
) -> list[dict[str, Any]]:
    """Every entry with this code (in ``system`` or any system), with its notes."""
    kb = shared_kb(kb_path)
    if system is not None and system not in kb.systems:
        raise InputError(Errors.E005.format(system=system, known=", ".join(kb.systems)))
    entries = kb.find(code, [system] if system else None)
    if not entries:
        raise InputError(Errors.E006.format(code=code, system=system or "any"))
    described = []
    for entry in entries:
        data = asdict(entry)
        data["aliases"] = [f"{a['text']} ({a['kind']})" for a in data["aliases"]]
        data["ancestors"] = kb.ancestors(entry.system, entry.code)
        described.append(data)
    return described
