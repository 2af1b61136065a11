"""Data files packaged with medcode_nlp (the clinical lexicon)."""
