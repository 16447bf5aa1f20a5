"""Process-wide settings the statistics code needs, in one place, each set only for as long as
it is needed and restored afterwards (an embedding code keeps its own settings).

What is changed, and when:

- **JAX 64-bit** (``jax_enable_x64``): the pyhf models are built, traced and evaluated in
  float64, inside :func:`x64` (``jax.enable_x64``, a thread-local context), never globally.
  Importing pyhf's JAX backend flips the *global* flag on; :func:`pyhf_jax_backend` imports it
  and puts the flag back as it was.
- **pyhf's backend** (``pyhf.set_backend``, global in pyhf): JAX (64 bit) while workspaces are
  built and their fits traced and compiled (:func:`pyhf_jax`); pyhf's previous backend and
  optimizer are restored afterwards (compiled functions no longer need it).
- **BLAS threads** (every OpenBLAS loaded, numpy's and scipy's): one thread while SciPy's
  L-BFGS-B runs (:func:`single_threaded_blas`, used by the SciPy reference path only): its tiny
  BLAS calls are 10-30 times slower with threads competing for the cores; the previous counts
  are restored afterwards.

:func:`statistics_settings` enters all three at once, for a caller that wants to run many
evaluations under one setting (nesting is harmless: every context restores what it found).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator
from typing import Any

import jax

__all__ = ["pyhf_jax", "pyhf_jax_backend", "single_threaded_blas", "statistics_settings", "x64"]


def __dir__() -> list[str]:
    return __all__


@functools.cache
def pyhf_jax_backend() -> Any:
    """pyhf's JAX backend class, imported without leaving the global x64 flag changed."""
    before = jax.config.read("jax_enable_x64")
    try:
        from pyhf.tensor.jax_backend import jax_backend  # sets x64 globally on import
    finally:
        jax.config.update("jax_enable_x64", before)
    return jax_backend


@contextlib.contextmanager
def x64() -> Iterator[None]:
    """JAX in 64 bit inside the block (thread-local, restored on exit)."""
    with jax.enable_x64(True):
        yield


@contextlib.contextmanager
def pyhf_jax() -> Iterator[None]:
    """pyhf's JAX backend (64 bit) and JAX x64 inside the block; pyhf's previous backend and
    optimizer are restored on exit."""
    import pyhf

    backend = pyhf_jax_backend()
    tensorlib, optimizer = pyhf.get_backend()
    with x64():
        pyhf.set_backend(backend(precision="64b"))
        try:
            yield
        finally:
            pyhf.set_backend(tensorlib, optimizer)


def _openblas_thread_controls() -> list[tuple[Any, Any]]:
    """(get, set) of the thread count of every OpenBLAS loaded in this process (numpy's and
    scipy's wheels each bundle one), found as threadpoolctl does (Linux only, else none)."""
    controls = []
    try:
        with open("/proc/self/maps") as maps:  # noqa: PTH123
            paths = sorted(
                {
                    line.split()[-1]
                    for line in maps
                    if "openblas" in line.lower() and line.split()[-1].startswith("/")
                }
            )
    except OSError:
        return controls
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            for suffix in ("64_", "_64", ""):
                get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    controls.append((get, put))
                    break
            else:
                continue
            break
    return controls


@functools.cache
def _blas_controls() -> tuple[tuple[Any, Any], ...]:
    return tuple(_openblas_thread_controls())


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """One OpenBLAS thread inside the block; the previous counts are restored on exit."""
    controls = _blas_controls()
    before = [get() for get, _ in controls]
    for _, put in controls:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(controls, before, strict=True):
            put(n)


@contextlib.contextmanager
def statistics_settings() -> Iterator[None]:
    """JAX x64, pyhf's JAX backend and one BLAS thread inside the block, all restored on exit."""
    with pyhf_jax(), single_threaded_blas():
        yield
