"""``medcode_label_mapper``: map another NER model's labels to PROBLEM / PROCEDURE / DRUG."""

from __future__ import annotations

from spacy.language import Language
from spacy.tokens import Doc

#: Labels of scispaCy's and common biomedical NER models, mapped to the project's labels.
DEFAULT_LABEL_MAP: dict[str, str] = {
    "DISEASE": "PROBLEM",
    "Disease": "PROBLEM",
    "PROBLEM": "PROBLEM",
    "CHEMICAL": "DRUG",
    "Chemical": "DRUG",
    "DRUG": "DRUG",
    "SIMPLE_CHEMICAL": "DRUG",
    "PROCEDURE": "PROCEDURE",
    "TEST": "PROCEDURE",
    "TREATMENT": "PROCEDURE",
    "ENTITY": "PROBLEM",
    "PATHOLOGICAL_FORMATION": "PROBLEM",
    "CANCER": "PROBLEM",
}


class LabelMapper:
    """Rename entity labels; entities whose label has no mapping are dropped."""

    def __init__(self, nlp: Language, name: str, *, mapping: dict[str, str]) -> None:
        self.name = name
        self.mapping = dict(mapping)

    def __call__(self, doc: Doc) -> Doc:
        mapped = []
        for ent in doc.ents:
            label = self.mapping.get(ent.label_)
            if label is not None:
                mapped.append(doc.char_span(ent.start_char, ent.end_char, label=label))
        doc.ents = [span for span in mapped if span is not None]
        return doc


@Language.factory(
    "medcode_label_mapper",
    assigns=["doc.ents"],
    default_config={"mapping": DEFAULT_LABEL_MAP},
)
def make_label_mapper(nlp: Language, name: str, mapping: dict[str, str]) -> LabelMapper:
    """Factory of the label mapper."""
    return LabelMapper(nlp, name, mapping=mapping)
