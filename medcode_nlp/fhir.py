"""Deprecated alias of :mod:`medcode_nlp.claims.fhir` (one release; the module moved in 0.3, issue 16)."""

import sys
from importlib import import_module

sys.modules[__name__] = import_module("medcode_nlp.claims.fhir")
