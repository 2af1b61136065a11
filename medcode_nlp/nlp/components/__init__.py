"""spaCy components of medcode_nlp (factories prefixed ``medcode_``)."""
