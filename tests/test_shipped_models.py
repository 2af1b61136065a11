"""The shipped models: where they are found, and no silent fallback when one is missing or
altered (issue 21). The wheel itself is checked by scripts/ci_wheel_smoke.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import medcode_nlp
from medcode_nlp.errors import IntegrityError
from medcode_nlp.paths import locate_models, models_dir

ROOT = Path(__file__).resolve().parents[1]
NOTE = ROOT / "examples" / "office_visit.txt"


@pytest.fixture(scope="module", autouse=True)
def _kb_ready(kb):
    return kb


def test_models_are_found_in_the_package_then_in_the_clone(tmp_path: Path) -> None:
    package = tmp_path / "site" / "medcode_nlp"
    package.mkdir(parents=True)
    assert locate_models(package) == package / "models"  # neither: errors name the package's
    (tmp_path / "site" / "models").mkdir()
    assert locate_models(package) == tmp_path / "site" / "models"  # a clone
    (package / "models").mkdir()
    assert locate_models(package) == package / "models"  # a wheel wins


def test_models_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("MEDCODE_MODELS", str(tmp_path))
    assert models_dir() == tmp_path
    monkeypatch.delenv("MEDCODE_MODELS")
    assert (models_dir() / "ner" / "meta.json").is_file()
    assert (models_dir() / "ranker" / "ranker.skops").is_file()


def test_missing_shipped_ner_stops_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDCODE_MODELS", str(tmp_path))
    with pytest.raises(IntegrityError, match=r"NER model is missing: .*meta\.json") as caught:
        medcode_nlp.load()
    assert str(tmp_path / "ner" / "meta.json") in str(caught.value)
    assert 'ner="dictionary"' in str(caught.value)


def test_missing_shipped_ranker_stops_load(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("MEDCODE_MODELS", str(tmp_path))
    with pytest.raises(IntegrityError, match=r"ranker model is missing: .*ranker\.skops"):
        medcode_nlp.load(ner="dictionary")


def _copy_model(name: str, target: Path) -> Path:
    shutil.copytree(ROOT / "models" / name, target / name)
    return target / name


def test_altered_shipped_ner_file_is_named(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    model = _copy_model("ner", tmp_path)
    (model / "ner" / "moves").write_bytes(b"changed")
    monkeypatch.setenv("MEDCODE_MODELS", str(tmp_path))
    with pytest.raises(IntegrityError, match=r"Checksum mismatch for .*moves"):
        medcode_nlp.load(ranker="none")


def test_altered_shipped_ranker_file_is_named(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    model = _copy_model("ranker", tmp_path)
    (model / "doc_classifier.json").unlink()
    monkeypatch.setenv("MEDCODE_MODELS", str(tmp_path))
    with pytest.raises(IntegrityError, match=r"doc_classifier\.json.*file listed but missing"):
        medcode_nlp.load(ner="dictionary")


def test_the_fallback_runs_when_asked_and_says_so(dictionary_coder) -> None:
    result = dictionary_coder(NOTE.read_text(encoding="utf-8"))
    assert result.codes
    assert result.versions["mode"] == {"ner": "dictionary", "ranker": "similarity"}
    assert result.versions["model"] == "dictionary" and result.versions["ranker"] is None


def test_the_shipped_models_say_so(default_coder) -> None:
    versions = default_coder.versions()
    assert versions["mode"] == {"ner": "shipped", "ranker": "shipped"}
    assert versions["model"].startswith("ner:medcode_ner-")
    assert versions["ranker"].startswith("ranker-")


def _cli(*args: str, models: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDCODE_MODELS": str(models)}
    return subprocess.run([sys.executable, "-m", "medcode_nlp.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_cli_stops_on_a_missing_model_and_names_it(tmp_path: Path) -> None:
    done = _cli("suggest", str(NOTE), models=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: The shipped NER model is missing")
    assert str(tmp_path / "ner" / "meta.json") in done.stderr and "--ner dictionary" in done.stderr
    assert "Traceback" not in done.stderr and not done.stdout

    done = _cli("suggest", str(NOTE), "--ner", "dictionary", models=tmp_path)
    assert done.returncode == 2 and str(tmp_path / "ranker" / "ranker.skops") in done.stderr
    assert "--ranker none" in done.stderr


@pytest.mark.slow
def test_cli_fallback_only_when_asked(tmp_path: Path) -> None:
    done = _cli("suggest", str(NOTE), "--ner", "dictionary", "--ranker", "none",
                "--format", "json", models=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"ner": "dictionary"' in done.stdout and '"ranker": "similarity"' in done.stdout


def test_the_shipped_ranker_loads_through_the_legacy_module_alias() -> None:
    """The shipped skops files name ``medcode_nlp.ranker.CodeRanker`` (the module before 0.3):
    the one-release alias of :mod:`medcode_nlp.ranking.estimators` loads them unchanged."""
    import skops.io as sio

    from medcode_nlp.ranking.estimators import LEGACY_MODULES, CodeRanker
    from medcode_nlp.ranking.model import RankerModel

    ranker_dir = models_dir() / "ranker"
    named = set(sio.get_untrusted_types(file=ranker_dir / "ranker.skops"))
    assert named & {"medcode_nlp.ranker.CodeRanker", "medcode_nlp.ranking.estimators.CodeRanker"}
    model = RankerModel.load(ranker_dir)
    assert isinstance(model.ranker, CodeRanker)
    assert model.doc_ranker is not None and model.term_ranker is not None
    assert LEGACY_MODULES == {"medcode_nlp.ranker": "medcode_nlp.ranking.estimators"}


def test_a_ranker_saved_now_names_the_new_module(tmp_path: Path) -> None:
    import numpy as np
    import skops.io as sio

    from medcode_nlp.ranking.estimators import CodeRanker, load_estimator

    rng = np.random.default_rng(0)
    x, y = rng.random((60, 3)), np.array([0, 1] * 30)
    path = tmp_path / "r.skops"
    sio.dump(CodeRanker(max_iter=5).fit(x, y), path)
    assert "medcode_nlp.ranking.estimators.CodeRanker" in sio.get_untrusted_types(file=path)
    assert isinstance(load_estimator(path), CodeRanker)
