"""``python -m medcode_nlp.cli``: the ``medcode`` command."""

from medcode_nlp.cli.app import main

main()
