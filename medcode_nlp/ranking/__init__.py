"""Ranking: mention and document features, note classifier, estimators, model bundle."""
