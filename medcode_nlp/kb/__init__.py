"""The knowledge base: SQLite store and build (store), code-system sources (sources), candidate
index (index), process-wide caches (cache), term search (search), saved-pipeline references (ref).

``from medcode_nlp.kb import load_kb, CodeKnowledgeBase`` keeps working: the store's public
names are re-exported here (the store imports no spaCy).
"""

from medcode_nlp.codesets.registry import code_key
from medcode_nlp.kb.store import CodeKnowledgeBase, load_kb

__all__ = ["CodeKnowledgeBase", "code_key", "load_kb"]
