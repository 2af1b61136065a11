"""The coding guidelines and conventions applied after ranking: code-level guidelines
(guidelines), the note review base and its rule groups (review, site_rules, status_rules) and
the convention pass over a finished result (conventions). The document stage that calls them
is :mod:`medcode_nlp.coding_rules`."""
