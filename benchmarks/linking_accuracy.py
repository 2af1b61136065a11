"""Scoring of a linking method: accuracy@k with Wilson intervals, and timed runs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

KS = (1, 5)


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 0.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_report(predictions: list[list[str]], gold: list[str]) -> dict[str, Any]:
    """accuracy@k (exact code among the first k) with 95% intervals, and related counts."""
    n = len(gold)
    report: dict[str, Any] = {"n": n}
    for k in KS:
        hits = sum(g in p[:k] for p, g in zip(predictions, gold, strict=True))
        low, high = wilson(hits, n)
        report[f"acc@{k}"] = round(hits / n, 4) if n else 0.0
        report[f"acc@{k}_ci95"] = [round(low, 4), round(high, 4)]
    category = sum(bool(p) and p[0][:3] == g[:3] for p, g in zip(predictions, gold, strict=True))
    report["category@1"] = round(category / n, 4) if n else 0.0
    report["no_candidates"] = sum(not p for p in predictions)
    return report


def timed_run(
    method: Callable[[list[str]], list[list[str]]], mentions: list[str], warmup: int = 16
) -> tuple[list[list[str]], float]:
    """Predictions and wall-clock seconds over all mentions (after a small warm-up call)."""
    method(mentions[:warmup])
    started = time.perf_counter()
    predictions = method(mentions)
    return predictions, time.perf_counter() - started
