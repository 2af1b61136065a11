"""Term search and code lookup over the knowledge base (used by the CLI and the API)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from medcode_nlp.errors import Errors, InputError
from medcode_nlp.lexicon import load_lexicon
from medcode_nlp.runtime import shared_index, shared_kb


def search_terms(
    queries: list[str],
    systems: list[str] | None = None,
    top_k: int = 10,
    kb_path: str | Path | None = None,
) -> list[list[dict[str, Any]]]:
    """Ranked candidates for each query (lexicon expansions searched too), best first."""
    kb = shared_kb(kb_path)
    chosen = systems or kb.systems
    for system in chosen:
        if system not in kb.systems:
            raise InputError(Errors.E005.format(system=system, known=", ".join(kb.systems)))
    lexicon = load_lexicon()
    variants = [[q, *lexicon.expand(q)] for q in queries]
    flat = [(i, text) for i, texts in enumerate(variants) for text in texts]
    best: list[dict[tuple[str, str], float]] = [{} for _ in queries]
    for system in chosen:
        hits = shared_index(kb_path, system).search([t for _, t in flat], top_k=top_k)
        for (i, _), found in zip(flat, hits, strict=True):
            for hit in found:
                key = (system, hit.code)
                best[i][key] = max(best[i].get(key, 0.0), hit.score)
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
