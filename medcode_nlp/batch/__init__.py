"""Batch coding: the resumable runner (runner), a worker's chunk (worker), note sources and
validation (sources), checkpoints and output assembly (checkpoint), Dask bags and dataframes
(cluster), and result tables (dataframe). The public names are re-exported here: ``from medcode_nlp.batch import
run_batch``.
"""

from medcode_nlp.batch.checkpoint import atomic_path
from medcode_nlp.batch.cluster import code_bag, code_dataframe
from medcode_nlp.batch.runner import DEFAULT_CHUNK_SIZE, BatchSummary, run_batch
from medcode_nlp.batch.sources import INPUT_FORMATS, OUTPUT_FORMATS, check_record, record_error
from medcode_nlp.batch.worker import code_chunk, code_records
from medcode_nlp.coder_cache import get_coder, loaded_coders, set_coder

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "BatchSummary",
    "atomic_path",
    "check_record",
    "code_bag",
    "code_chunk",
    "code_dataframe",
    "code_records",
    "get_coder",
    "loaded_coders",
    "record_error",
    "run_batch",
    "set_coder",
]
