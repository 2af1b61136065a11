"""The spaCy side: pipeline assembly, tokenizer, extensions, lexicon, components."""
