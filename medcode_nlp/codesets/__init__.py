"""Loaders that turn code-system sources into CodeEntry records."""

from medcode_nlp.codesets.base import ALIAS_KINDS, Alias, CodeEntry, IndexTerm
from medcode_nlp.codesets.registry import systems

__all__ = ["ALIAS_KINDS", "Alias", "CodeEntry", "IndexTerm", "systems"]
