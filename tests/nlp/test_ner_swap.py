"""``load(ner=...)`` uses another installed spaCy/scispaCy NER model, mapping its labels."""

from __future__ import annotations

import random

import pytest
import spacy
from spacy.training import Example

import medcode_nlp
from medcode_nlp.errors import InputError

SENTENCES = [
    ("The patient has pneumonia.", [(16, 25, "DISEASE")]),
    ("Pneumonia was treated with aspirin.", [(0, 9, "DISEASE"), (27, 34, "CHEMICAL")]),
    ("No sign of pneumonia today.", [(11, 20, "DISEASE")]),
    ("She takes aspirin daily.", [(10, 17, "CHEMICAL")]),
]


@pytest.fixture(scope="module")
def tiny_ner_package(tmp_path_factory):
    """A tiny NER pipeline with scispaCy-style labels (DISEASE, CHEMICAL), saved to disk."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    for label in ("DISEASE", "CHEMICAL"):
        ner.add_label(label)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in SENTENCES]
    optimizer = nlp.initialize(lambda: examples)
    random.seed(0)
    for _ in range(40):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer, drop=0.0)
    nlp.meta["name"] = "tiny_bc5cdr_like"
    path = tmp_path_factory.mktemp("pkg") / "tiny_bc5cdr_like"
    nlp.to_disk(path)
    return path


def test_ner_swap_maps_labels(tiny_ner_package, kb):
    coder = medcode_nlp.load(ner=str(tiny_ner_package), matcher="off", ranker="none")
    assert "medcode_label_mapper" in coder.nlp.pipe_names
    result = coder("The patient has pneumonia.")
    labels = {(e.text, e.label) for e in result.entities}
    assert ("pneumonia", "PROBLEM") in labels
    assert any(c.code.startswith("J18") for e in result.entities for c in e.candidates)
    assert coder.versions()["model"] == f"ner:{tiny_ner_package}"


def test_ner_swap_unknown_package_is_clear(kb):
    with pytest.raises(InputError, match="en_ner_not_installed"):
        medcode_nlp.load(ner="en_ner_not_installed")
