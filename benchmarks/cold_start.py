"""Cold start: the README's first command (``protomodel walk --steps 200``) on an empty user
cache, as on a fresh install: no database store, no triangulations, no JAX compilation cache.

Prints the time to the store, to the first recorded step (read from the run file while the
walk runs) and to the end of the command, and the steps per second over the run.

Usage: python benchmarks/cold_start.py [--steps 200] [--keep DIR] [-- extra walk options]
(the cache and the run file go to a temporary folder, removed afterwards unless --keep)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _steps(run_file: Path) -> tuple[int, float | None]:
    """(steps recorded, time of the first one) of a run file being written (0 if unreadable)."""
    if not run_file.exists():
        return 0, None
    try:
        with sqlite3.connect(f"file:{run_file}?mode=ro", uri=True, timeout=1) as db:
            count, first = db.execute("SELECT count(*), min(time) FROM steps").fetchone()
            return int(count), first
    except sqlite3.Error:
        return 0, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="use (and keep) this folder")
    parser.add_argument("extra", nargs="*", help="more options for protomodel walk")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="protomodels-cold-"))
    cache, work = root / "cache", root / "run"
    for folder in (cache, work):
        if folder.exists() and any(folder.iterdir()):
            sys.exit(f"{folder} is not empty: a cold start needs an empty cache")
        folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    for name in ("PROTOMODELS_DATABASE", "PROTOMODELS_TRIANGULATIONS", "PROTOMODELS_JAX_CACHE"):
        env.pop(name, None)
    command = ["protomodel", "walk", "--steps", str(args.steps), *args.extra]
    print("$", " ".join(command), f"(XDG_CACHE_HOME={cache})")
    run_file = work / "walk-0.sqlite"
    store = cache / "protomodels" / "smodels-database.sqlite"
    t0 = time.time()
    process = subprocess.Popen(  # noqa: S603 - our own command
        command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    store_at = first_at = None
    while process.poll() is None:
        if store_at is None and store.exists():
            store_at = time.time() - t0
        if first_at is None:
            count, first = _steps(run_file)
            if count:
                first_at = first - t0
        time.sleep(0.2)
    total = time.time() - t0
    stderr = process.stderr.read().decode() if process.stderr else ""
    count, first = _steps(run_file)
    if first_at is None and first is not None:
        first_at = first - t0
    print(f"exit code {process.returncode}; {count} steps recorded")
    if process.returncode:
        print(stderr[-2000:])
    print(f"store file appears after {store_at:.1f} s" if store_at else "no store seen")
    print(f"first step after {first_at:.1f} s (goal <= 60 s)" if first_at else "no step")
    print(f"whole command {total:.1f} s (goal: about 90 s)")
    if first_at and count > 1:
        print(f"{(count - 1) / (total - first_at):.1f} steps/s after the first step")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
