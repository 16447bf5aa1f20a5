"""Where protomodels finds its inputs: the shared data folder and the default store.

The shared folder (SModelS database tarball, cross-section tables, ...) is taken from, in order:
an explicit argument, the ``PROTOMODELS_SHARED`` environment variable, ``../shared`` next to the
repository this package lives in, and ``../shared`` relative to the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from protomodels.exceptions import SharedDataNotFoundError

__all__ = [
    "triangulation_cache_dir",
    "DATABASE_TARBALL",
    "default_database_source",
    "default_store_path",
    "shared_dir",
]

#: file name of the SModelS database inside ``<shared>/data``
DATABASE_TARBALL = "smodels-database-3.0.0.tar.xz"


def __dir__() -> list[str]:
    return __all__


def shared_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Return the shared data folder, checking that it exists."""
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    elif os.environ.get("PROTOMODELS_SHARED"):
        candidates.append(Path(os.environ["PROTOMODELS_SHARED"]))
    else:
        candidates.append(Path(__file__).resolve().parents[1].parent / "shared")
        candidates.append(Path.cwd().parent / "shared")
        candidates.append(Path.cwd() / "shared")
    for candidate in candidates:
        if (candidate / "data").is_dir():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in candidates)
    msg = (
        f"shared data folder not found (tried {tried}); "
        "set PROTOMODELS_SHARED or pass --shared to point at the folder that holds data/"
    )
    raise SharedDataNotFoundError(msg)


def default_database_source(shared: str | os.PathLike[str] | None = None) -> Path:
    """Return the SModelS database tarball in the shared folder."""
    source = shared_dir(shared) / "data" / DATABASE_TARBALL
    if not source.exists():
        msg = f"database tarball {source} is missing; pass --source TARBALL_OR_DIR"
        raise SharedDataNotFoundError(msg)
    return source


def triangulation_cache_dir() -> Path | None:
    """Folder of the cached grid triangulations: ``PROTOMODELS_TRIANGULATIONS`` (``0`` / ``off``
    switches the cache off) or ``triangulations`` in the user cache."""
    setting = os.environ.get("PROTOMODELS_TRIANGULATIONS", "")
    if setting.lower() in ("0", "off", "no", "false"):
        return None
    if setting:
        return Path(setting).expanduser()
    return Path(platformdirs.user_cache_dir("protomodels")) / "triangulations"


def default_store_path() -> Path:
    """Return the default SQLite store: ``PROTOMODELS_DATABASE`` or one in the user cache."""
    if os.environ.get("PROTOMODELS_DATABASE"):
        return Path(os.environ["PROTOMODELS_DATABASE"])
    return Path(platformdirs.user_cache_dir("protomodels")) / "smodels-database.sqlite"
