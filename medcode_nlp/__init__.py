"""medcode_nlp: suggest ICD-10-CM, ICD-10-PCS, HCPCS and CPT codes from clinical notes.

Names are imported lazily, so ``import medcode_nlp.kb.store`` does not pull in spaCy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from medcode_nlp.about import SCHEMA_VERSION, __version__

if TYPE_CHECKING:
    from medcode_nlp.batch.dataframe import to_dataframe
    from medcode_nlp.coder import Coder, load
    from medcode_nlp.coding_rules import CodingOptions
    from medcode_nlp.errors import InputError, IntegrityError, MedcodeError
    from medcode_nlp.kb.store import CodeKnowledgeBase, load_kb
    from medcode_nlp.nlp.render import render
    from medcode_nlp.schema import (
        Candidate,
        CodeSuggestion,
        CodingResult,
        Entity,
        Evidence,
        ExcludedCode,
    )

_LAZY = {
    "Coder": "medcode_nlp.coder",
    "load": "medcode_nlp.coder",
    "CodingOptions": "medcode_nlp.coding_rules",
    "to_dataframe": "medcode_nlp.batch.dataframe",
    "InputError": "medcode_nlp.errors",
    "IntegrityError": "medcode_nlp.errors",
    "MedcodeError": "medcode_nlp.errors",
    "CodeKnowledgeBase": "medcode_nlp.kb.store",
    "load_kb": "medcode_nlp.kb.store",
    "render": "medcode_nlp.nlp.render",
    "Candidate": "medcode_nlp.schema",
    "CodeSuggestion": "medcode_nlp.schema",
    "CodingResult": "medcode_nlp.schema",
    "Entity": "medcode_nlp.schema",
    "Evidence": "medcode_nlp.schema",
    "ExcludedCode": "medcode_nlp.schema",
}

__all__ = [
    "Candidate",
    "CodeKnowledgeBase",
    "CodeSuggestion",
    "Coder",
    "CodingOptions",
    "CodingResult",
    "Entity",
    "Evidence",
    "ExcludedCode",
    "InputError",
    "IntegrityError",
    "MedcodeError",
    "SCHEMA_VERSION",
    "__version__",
    "load",
    "load_kb",
    "render",
    "to_dataframe",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'medcode_nlp' has no attribute {name!r}")
