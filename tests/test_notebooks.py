"""The notebooks run top to bottom, are committed executed, and their plots display."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts a server, a browser or runs notebooks

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["quickstart.ipynb", "benchmark.ipynb"]


def _images(notebook) -> int:
    return sum("image/png" in output.get("data", {})
               for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_committed_with_their_outputs(name):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "commit the notebook executed"
    assert sum(bool(cell.outputs) for cell in code) >= len(code) - 1
    if name == "benchmark.ipynb":
        assert _images(notebook) >= 3  # the plots are shown, not drawn off screen


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_run_top_to_bottom(name, kb, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MEDCODE_QUICKSTART_NER", "dictionary")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # the quickstart asserts that the setting changes the codes
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    if name == "benchmark.ipynb":
        assert _images(notebook) >= 3
