"""Numbered errors. Messages name the offending value, never note text."""

from __future__ import annotations


class Errors:
    """Message templates, numbered like spaCy's errors."""

    E001 = "Input file {path} is not valid UTF-8 text (byte {position}); convert it to UTF-8 first."
    E002 = "Input file {path} looks binary (it contains NUL bytes); a plain-text note is expected."
    E003 = "Note has {length} characters, over the limit of {limit}; raise max_chars to allow it."
    E004 = "Expected a note as str, got {type_name}."
    E005 = "Unknown code system {system!r}; known systems: {known}."
    E006 = "Code {code!r} was not found in code system {system}."
    E007 = "Artifact at {path} is missing or incomplete: {detail}."
    E008 = "Checksum mismatch for {path}: expected {expected}, got {actual}; the file was changed or truncated."
    E009 = "Could not parse {path} as {fmt}: {detail}."
    E010 = "File {path} does not exist."
    E011 = "Unknown setting {value!r} for {name}; expected one of {allowed}."
    E012 = "Model at {path} is missing or incomplete: {detail}."
    E013 = "Could not load NER package {name!r}: {detail}."
    E014 = "Invalid value for {name}: {detail}."
    E015 = "Record {record} is invalid: {detail}."
    E016 = ("The shipped {kind} model is missing: {path} not found. Reinstall medcode_nlp (or set "
            "MEDCODE_MODELS to a models folder); to run without it, ask for {fallback}.")
    E017 = ("Code system {system!r} is not in the knowledge base {path} (it has: {known}); add "
            "it from its file with `{command}`.")
    E018 = ("Note {path} has {length} characters, over the limit of {limit}; pass "
            "--max-chars {length} (or more) to code it.")
    E019 = ("The saved pipeline's {component} needs the knowledge base {name} (code sets: "
            "{versions}; content {content}), and no knowledge base found matches it ({found}). "
            "Build that one (`medcode kb build`, or upgrade/downgrade medcode_nlp to the version "
            "that built it) or set MEDCODE_KB to its directory, then load the pipeline again.")
    E020 = ("Unknown ranker {value!r} for the medcode_coder component: expected \"shipped\", "
            "\"none\" or a ranker directory (written by `medcode train ranker`).")


class MedcodeError(Exception):
    """Base class for errors raised by medcode_nlp."""


class InputError(MedcodeError, ValueError):
    """The user gave input the library cannot use."""


class IntegrityError(MedcodeError):
    """An artifact on disk does not match its recorded checksum or is incomplete."""
