"""The ``medcode`` command line: commands (app), pre-load checks (checks), note input (textio)."""

from medcode_nlp.cli.app import main

__all__ = ["main"]
