"""The alias set every linking method searches (:class:`AliasTable`), the method interface
(:data:`LinkingMethod`), the TF-IDF settings shared by the exact and the scispaCy search, and
the small helpers of every method (:func:`keep_billable`, :func:`batches`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: A linking method: per mention, its codes, best first.
LinkingMethod = Callable[[list[str]], list[list[str]]]

# scispaCy's create_tfidf_ann_index vectorizer settings (linking_scispacy.build_scispacy_index)
TFIDF_SETTINGS: dict[str, Any] = {"analyzer": "char_wb", "ngram_range": (3, 3), "min_df": 10}


@dataclass(frozen=True)
class AliasTable:
    """The unique alias strings of one code system and the codes each one names.

    ``aliases`` is sorted (deterministic order for every index built from it); an alias
    string shared by several codes (``"Other chorioretinal inflammations"``) is one entry
    with several codes, as in scispaCy's ``alias_to_cuis``.
    """

    aliases: list[str]
    alias_codes: list[tuple[str, ...]]
    descriptions: dict[str, str]
    billable: frozenset[str]

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[int, str, str, str]],
        billable: Iterable[str],
        descriptions: dict[str, str] | None = None,
    ) -> AliasTable:
        """From ``(alias_id, code, text, kind)`` rows (``CodeKnowledgeBase.iter_aliases``).

        Descriptions default to the ``description`` aliases; a code without one uses its
        first alias.
        """
        codes_of: dict[str, set[str]] = defaultdict(set)
        found: dict[str, str] = {}
        first: dict[str, str] = {}
        for _, code, text, kind in rows:
            text = text.strip()
            if not text:
                continue
            codes_of[text].add(code)
            first.setdefault(code, text)
            if kind == "description":
                found.setdefault(code, text)
        merged = {**first, **found, **(descriptions or {})}
        for code, text in merged.items():  # a canonical name is an alias too (as in scispaCy)
            codes_of[text].add(code)
        aliases = sorted(codes_of)
        return cls(
            aliases=aliases,
            alias_codes=[tuple(sorted(codes_of[a])) for a in aliases],
            descriptions=merged,
            billable=frozenset(billable),
        )

    @classmethod
    def from_kb(cls, kb: Any, system: str = "icd10cm") -> AliasTable:
        """Every alias of ``system`` in a :class:`medcode_nlp.kb.store.CodeKnowledgeBase`."""
        return cls.from_rows(kb.iter_aliases(system), kb.codes(system, billable_only=True))

    @property
    def codes(self) -> list[str]:
        return sorted(self.descriptions)

    def signature(self) -> str:
        """SHA-256 of the alias -> codes mapping (names cached index builds)."""
        digest = hashlib.sha256()
        for alias, codes in zip(self.aliases, self.alias_codes, strict=True):
            digest.update(f"{alias}\t{','.join(codes)}\n".encode())
        return digest.hexdigest()

    def pairs(self, billable_only: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(alias position, code position) of every alias-code pair, and the sorted codes."""
        codes = self.codes
        position = {code: i for i, code in enumerate(codes)}
        alias_pos: list[int] = []
        code_pos: list[int] = []
        for i, alias_codes in enumerate(self.alias_codes):
            for code in alias_codes:
                if billable_only and code not in self.billable:
                    continue
                alias_pos.append(i)
                code_pos.append(position[code])
        return np.array(alias_pos, dtype=np.int64), np.array(code_pos, dtype=np.int64), codes


def keep_billable(codes: Iterable[str], billable: frozenset[str] | None, top_k: int) -> list[str]:
    """The first ``top_k`` of ``codes``, only billable ones when ``billable`` is given."""
    kept = [c for c in codes if billable is None or c in billable]
    return kept[:top_k]


def batches(mentions: list[str], size: int) -> Iterator[list[str]]:
    """``mentions`` in consecutive slices of ``size``."""
    for start in range(0, len(mentions), size):
        yield mentions[start : start + size]
