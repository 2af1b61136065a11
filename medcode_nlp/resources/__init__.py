"""Data files packaged with medcode_nlp (lexicon, section and context rules)."""
