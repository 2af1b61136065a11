"""Enumerations that are ranker feature columns keep the order the shipped ranker was fit on,
and hold exactly the values of their sources (a new value in a source must be a decision)."""

from __future__ import annotations

from medcode_nlp.codesets import base, registry
from medcode_nlp.nlp import extensions, lexicon
from medcode_nlp.nlp.components import context_rules
from medcode_nlp.ranking import mention_features as features
from medcode_nlp.training import ner_data


def test_alias_kinds_match_the_code_sets() -> None:
    assert set(features.ALIAS_KINDS) == set(base.ALIAS_KINDS)


def test_system_columns_match_the_registry() -> None:
    assert features.SYSTEM_GROUPS == ("icd10cm", "icd10pcs", "hcpcs", "cpt", "custom")
    assert set(features.SYSTEM_GROUPS) == set(registry.systems())


def test_labels_match_the_ner_and_the_registry() -> None:
    assert features.LABELS == registry.LABELS == ner_data.LABELS == lexicon.LABELS


def test_assertions_match_the_extension_and_context_rules() -> None:
    assert set(features.ASSERTIONS) == set(extensions.ASSERTIONS)
    assert set(features.ASSERTIONS) - {"present"} == set(context_rules.ASSERTION_PRIORITY)
