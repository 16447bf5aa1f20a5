"""JAX's persistent compilation cache in the user's cache folder.

The likelihood fits are compiled once per padded number of regions, which takes seconds; with
the persistent cache a new process loads the compiled programs from disk instead. The folder is
``platformdirs.user_cache_dir("protomodels")/jax`` (e.g. ``~/.cache/protomodels/jax`` on Linux),
or the one named by the environment variable ``PROTOMODELS_JAX_CACHE``; set that variable to
``0`` (or ``off``) to leave the cache off. A cache folder the user already gave JAX (e.g. with
``JAX_COMPILATION_CACHE_DIR``) is kept. Delete the folder to clear the cache; JAX keys its
entries by program, JAX version and flags, so stale entries are never used.

This changes process-wide JAX settings (``jax_compilation_cache_dir`` and the minimum compile
time worth caching). :class:`~protomodels.statistics.attach.LikelihoodBuilder` calls it when it is
built, unless given ``compilation_cache=False``.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import platformdirs

__all__ = ["ENV_VAR", "enable_compilation_cache"]


def __dir__() -> list[str]:
    return __all__


#: environment variable: a cache folder, or 0/off to disable the cache
ENV_VAR = "PROTOMODELS_JAX_CACHE"
_OFF = ("0", "off", "false", "no")
#: compilations shorter than this (s) are not written to disk
MIN_COMPILE_SECONDS = 0.05


def enable_compilation_cache(directory: str | os.PathLike[str] | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache; return its folder (None if left off).

    Args:
        directory: the folder; default: ``$PROTOMODELS_JAX_CACHE`` or the user cache folder.
    """
    setting = os.environ.get(ENV_VAR, "")
    if directory is None and setting.lower() in _OFF and setting:
        return None
    current = jax.config.jax_compilation_cache_dir
    if directory is None and current:
        return Path(current)
    if directory is None:
        directory = setting or Path(platformdirs.user_cache_dir("protomodels")) / "jax"
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: compile every time, as without the cache
    if current == str(path):
        return path
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    # JAX decides once per process whether the cache is used (at the first compilation, which
    # may have happened already); let it decide again with the folder set
    from jax.experimental.compilation_cache import compilation_cache

    compilation_cache.reset_cache()
    return path
