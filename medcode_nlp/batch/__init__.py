"""Batch coding: runner, note sources, checkpoints, Dask, tables."""
