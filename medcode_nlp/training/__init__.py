"""Training recipes: corpus builders for the shipped models."""
