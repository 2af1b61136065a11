"""ConText rules: the assertion categories, the rule file format and its parser, and the trigger matcher."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import medcode_nlp.nlp.extensions  # noqa: F401  (registers extensions)
from medcode_nlp.errors import Errors, InputError
from medcode_nlp.nlp.components.sections import (
    phrase_trie_regex,
)
from medcode_nlp.resources import read_json

RULES_FILE = "context_rules.json"
HINTS_FILE = "section_hints.json"
CATEGORIES: dict[str, tuple[str, str]] = {
    "NEGATED": ("is_negated", "negated"),
    "HYPOTHETICAL": ("is_hypothetical", "hypothetical"),
    "FAMILY": ("is_family", "family"),
    "UNCERTAIN": ("is_uncertain", "uncertain"),
    "HISTORICAL": ("is_historical", "historical"),
}
ASSERTION_PRIORITY = ("negated", "hypothetical", "family", "uncertain", "historical")
ASSERTION_FLAGS = {assertion: flag for flag, assertion in CATEGORIES.values()}
DIRECTIONS = ("forward", "backward", "bidirectional", "pseudo", "terminate")
DEFAULT_SCOPE = 10
@dataclass(frozen=True)
class ContextRule:
    """One trigger, pseudo-trigger or termination term."""

    text: str  # the literal phrase, or the regular expression when is_pattern
    category: str
    direction: str
    is_pattern: bool = False
    max_scope: int | None = None
    labels: tuple[str, ...] = ()  # entity labels the rule applies to (empty: every label)

    def regex(self) -> str:
        """The rule as a regular expression (whole words, any white space between words)."""
        if self.is_pattern:
            return self.text
        body = r"\s+".join(re.escape(word) for word in self.text.split())
        start = r"(?<!\w)" if re.match(r"\w", self.text) else ""
        end = r"(?!\w)" if re.search(r"\w$", self.text) else ""
        return start + body + end


@dataclass
class ContextRules:
    """All rules and the default scope (in words) of each category."""

    rules: list[ContextRule]
    max_scope: dict[str, int] = field(default_factory=dict)

    def by_category(self, category: str) -> list[ContextRule]:
        """Rules of one category."""
        return [rule for rule in self.rules if rule.category == category]


def parse_context_rules(data: Any, source: str = RULES_FILE) -> ContextRules:
    """Validate a ConText rules JSON object and expand its rule groups."""

    def bad(detail: str) -> InputError:
        return InputError(Errors.E009.format(path=source, fmt="ConText rules JSON", detail=detail))

    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise bad("expected an object with a 'rules' list")
    scopes: dict[str, int] = {}
    for category, conf in (data.get("categories") or {}).items():
        if category not in CATEGORIES:
            raise bad(f"unknown category {category!r}; expected one of {sorted(CATEGORIES)}")
        scopes[category] = int((conf or {}).get("max_scope", DEFAULT_SCOPE))
    rules: list[ContextRule] = []
    for i, group in enumerate(data["rules"]):
        if not isinstance(group, dict):
            raise bad(f"rule group {i} is not an object")
        cats = group.get("category")
        cats = [cats] if isinstance(cats, str) else cats
        if not isinstance(cats, list) or not cats or any(c not in CATEGORIES for c in cats):
            raise bad(f"rule group {i} has an unknown category {group.get('category')!r}")
        direction = group.get("direction")
        if direction not in DIRECTIONS:
            raise bad(f"rule group {i} has direction {direction!r}; expected one of {DIRECTIONS}")
        scope = group.get("max_scope")
        if scope is not None and (not isinstance(scope, int) or scope < 1):
            raise bad(f"rule group {i} has max_scope {scope!r}; expected a positive integer")
        labels = group.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
            raise bad(f"rule group {i}: labels must be a list of entity labels")
        items: list[tuple[str, bool]] = []
        for key, is_pattern in (("literal", False), ("pattern", True)):
            if isinstance(group.get(key), str):
                items.append((group[key], is_pattern))
            values = group.get(key + "s", [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise bad(f"rule group {i}: {key}s must be a list of strings")
            items.extend((value, is_pattern) for value in values)
        if not items:
            raise bad(f"rule group {i} has no literals or patterns")
        for text, is_pattern in items:
            if is_pattern:
                try:
                    re.compile(text)
                except re.error as exc:
                    raise bad(f"rule group {i}: bad pattern {text!r} ({exc})") from exc
            for category in cats:
                rules.append(ContextRule(text, category, direction, is_pattern, scope,
                                         tuple(labels)))
    return ContextRules(rules, scopes)


def load_context_rules(path: str | Path | None = None) -> ContextRules:
    """Rules from ``path``, or the packaged ``resources/context_rules.json``."""
    return parse_context_rules(read_json(path, RULES_FILE), str(path or RULES_FILE))


@dataclass(frozen=True)
class Hit:
    """A trigger or termination term found in a sentence (token offsets in the doc)."""

    rule: ContextRule
    start: int
    end: int


class CategoryMatcher:
    """Compiled regexes of one category: pseudo-triggers + triggers in one, terminations in another.

    Literal phrases are compiled into one character trie (longest match at a position wins);
    regex patterns are separate alternatives: pseudo patterns before the literals, trigger
    patterns after them, so at one position a pseudo-trigger or a longer literal wins.
    """

    def __init__(self, category: str, rules: Sequence[ContextRule], default_scope: int) -> None:
        self.category = category
        self.default_scope = default_scope
        triggers = [r for r in rules if r.direction != "terminate"]
        terms = [r for r in rules if r.direction == "terminate"]
        self._trigger_literals, self._trigger_patterns, self._trigger_re = _compile(triggers)
        self._term_literals, self._term_patterns, self._term_re = _compile(terms)

    def find(
        self, text: str
    ) -> tuple[list[tuple[ContextRule, int, int]], list[tuple[int, int]], list[tuple[int, int]]]:
        """Triggers (rule, start_char, end_char), pseudo-trigger spans and termination spans."""
        triggers: list[tuple[ContextRule, int, int]] = []
        pseudo: list[tuple[int, int]] = []
        if self._trigger_re is not None:
            for m in self._trigger_re.finditer(text):
                if m.end() == m.start():
                    continue
                rule = _rule_of(m, self._trigger_literals, self._trigger_patterns)
                if rule is None:
                    continue
                if rule.direction == "pseudo":
                    pseudo.append((m.start(), m.end()))
                else:
                    triggers.append((rule, m.start(), m.end()))
        terms: list[tuple[int, int]] = []
        if self._term_re is not None:
            terms = [
                (m.start(), m.end()) for m in self._term_re.finditer(text) if m.end() > m.start()
            ]
        return triggers, pseudo, terms

    def literal_trigger(self, text: str) -> ContextRule | None:
        """The trigger rule whose literal is exactly ``text`` (any case and spacing), if any."""
        rule = self._trigger_literals.get(_norm(text))
        return rule if rule is not None and rule.direction != "pseudo" else None


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _compile(
    rules: Sequence[ContextRule],
) -> tuple[dict[str, ContextRule], list[ContextRule], re.Pattern[str] | None]:
    """(literal -> rule, pattern rules, combined regex); the first rule of a literal wins."""
    literals: dict[str, ContextRule] = {}
    for rule in rules:
        if not rule.is_pattern:
            literals.setdefault(_norm(rule.text), rule)
    patterns = [r for r in rules if r.is_pattern]
    pseudo = [i for i, r in enumerate(patterns) if r.direction == "pseudo"]
    other = [i for i, r in enumerate(patterns) if r.direction != "pseudo"]
    parts = [f"(?P<p{i}>{patterns[i].text})" for i in pseudo]
    if literals:
        parts.append(f"(?P<lit>{phrase_trie_regex(literals, word_bounds=True)})")
    parts += [f"(?P<p{i}>{patterns[i].text})" for i in other]
    regex = re.compile("|".join(parts), re.IGNORECASE) if parts else None
    return literals, patterns, regex


def _rule_of(
    match: re.Match[str], literals: dict[str, ContextRule], patterns: list[ContextRule]
) -> ContextRule | None:
    group = match.lastgroup or ""
    if group == "lit":
        return literals.get(_norm(match.group()))
    return patterns[int(group[1:])] if group.startswith("p") else None
