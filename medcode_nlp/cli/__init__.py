"""The ``medcode`` command line: the app and its coding, search, kb, batch and serve commands
(app), the evaluate and train commands (evaluate), pre-load checks (checks), note input
(textio)."""

import medcode_nlp.cli.evaluate  # noqa: F401  (registers ``medcode evaluate`` / ``train``)
from medcode_nlp.cli.app import main

__all__ = ["main"]
