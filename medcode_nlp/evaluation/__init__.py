"""Evaluation: data sets, metrics, calibration, reports, coding/NER/context evaluators."""
