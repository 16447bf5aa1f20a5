"""Measure the database import and the loading of the store.

Prints: full import time of the SModelS tarball on this machine, store size, time to open the
store and load all grids (and with the pyhf workspaces), and the time of a no-op re-import.

Usage: python benchmarks/db_import.py [--source TARBALL_OR_DIR] [--workers N] [--keep STORE]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

from protomodels.database import import_database, open
from protomodels.paths import default_database_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", default=None, help="tarball or folder (default: shared)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", default=None, help="write the store here and keep it")
    args = parser.parse_args()
    source = Path(args.source) if args.source else default_database_source()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(args.keep) if args.keep else Path(tmp) / "store.sqlite"
        if store.exists():
            store.unlink()
        print(f"source: {source} ({source.stat().st_size / 1e6:.1f} MB)")
        print(f"cores: {os.cpu_count()}, workers: {args.workers or min(4, os.cpu_count() or 1)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            report = import_database(source, store, workers=args.workers)
            t_import = time.perf_counter() - t0
        print(
            f"full import: {t_import:.1f} s  ({len(report.imported)} results imported, "
            f"{len(report.skipped)} skipped, {len(report.errors)} errors, "
            f"{len(report.warnings)} warnings)"
        )
        size = sum(p.stat().st_size for p in store.parent.glob(store.name + "*"))
        print(f"store size: {size / 1e6:.1f} MB")
        for workspaces in (False, True):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                db = open(store, build=False, workspaces=workspaces)
                times.append(time.perf_counter() - t0)
            points = db.counts()["totals"]["grid_points"]
            label = "with pyhf workspaces" if workspaces else "grids only"
            print(
                f"open + load all grids ({label}): best {min(times):.2f} s, "
                f"median {sorted(times)[1]:.2f} s  ({len(db)} results, {points} grid points)"
            )
        t0 = time.perf_counter()
        again = import_database(source, store, workers=args.workers)
        print(
            f"re-import of the unchanged source: {time.perf_counter() - t0:.2f} s "
            f"(no-op: {again.no_op}, imported {len(again.imported)})"
        )


if __name__ == "__main__":
    main()
