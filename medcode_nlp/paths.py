"""Where the project's files are: the package, the shipped models, the public data sets.

Every other module asks here instead of computing paths from its own ``__file__``, so moving a
module never moves what it finds.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The installed package (``medcode_nlp/``).
PACKAGE_DIR = Path(__file__).resolve().parent
#: Code-set files shipped inside the package (``medcode_nlp/data``).
DATA_DIR = PACKAGE_DIR / "data"
#: The checkout holding the package (meaningful in a clone or an editable install).
REPO_ROOT = PACKAGE_DIR.parent


def locate_models(package: Path = PACKAGE_DIR) -> Path:
    """``models`` inside the installed package (a wheel), else ``models/`` beside it (a clone,
    editable install); when neither exists, the package's (errors name where models belong)."""
    packaged, clone = package / "models", package.parent / "models"
    return clone if not packaged.is_dir() and clone.is_dir() else packaged


def models_dir() -> Path:
    """Folder of the shipped models: ``$MEDCODE_MODELS`` if set, else :func:`locate_models`."""
    override = os.environ.get("MEDCODE_MODELS")
    return Path(override) if override else locate_models(PACKAGE_DIR)


def shared_data_dir() -> Path:
    """The public data sets used by evaluations, benchmarks and training:
    ``$MEDCODE_SHARED_DATA`` if set, else ``../shared/data`` beside the checkout."""
    override = os.environ.get("MEDCODE_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"
