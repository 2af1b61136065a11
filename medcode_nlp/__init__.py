"""medcode_nlp: suggest ICD-10-CM, ICD-10-PCS, HCPCS and CPT codes from clinical notes."""

from medcode_nlp.about import SCHEMA_VERSION, __version__
from medcode_nlp.coder import Coder, load
from medcode_nlp.coding_rules import CodingOptions
from medcode_nlp.errors import InputError, IntegrityError, MedcodeError
from medcode_nlp.kb import CodeKnowledgeBase, load_kb
from medcode_nlp.schema import (
    Candidate,
    CodeSuggestion,
    CodingResult,
    Entity,
    Evidence,
    ExcludedCode,
)

__all__ = [
    "SCHEMA_VERSION",
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
    "__version__",
    "load",
    "load_kb",
]
