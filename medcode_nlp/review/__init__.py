"""Coders' reviewed decisions: the decision store and feedback for training."""
