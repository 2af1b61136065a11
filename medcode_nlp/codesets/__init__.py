"""Loaders that turn code-system sources into CodeEntry records."""

from medcode_nlp.codesets.base import ALIAS_KINDS, SYSTEMS, Alias, CodeEntry, IndexTerm

__all__ = ["ALIAS_KINDS", "SYSTEMS", "Alias", "CodeEntry", "IndexTerm"]
