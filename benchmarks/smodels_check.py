"""Shared driver of the SModelS cross-checks (``lifetimes.py``, ``non_mssm.py``): write the
spectra as SLHA files, run SModelS on them when a Python with SModelS 3.0.x is given (optional;
SModelS is not a dependency), and compare our predictions with its
(``compare_reference.py --reference``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from protomodels.database import open as open_database
from protomodels.theory.predictions import Predictor
from protomodels.theory.protomodel import Protomodel

HERE = Path(__file__).resolve().parent


def cross_check(description: str, default_out: str,
                models: Callable[[], dict[str, Protomodel]]) -> None:
    """Command line of a cross-check: ``[--out DIR] [--smodels-python PYTHON
    --smodels-database UNPACKED_DATABASE_DIR]``; without ``--smodels-python`` an existing
    ``DIR/*.json`` of an earlier SModelS run is compared."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path(default_out))
    parser.add_argument("--smodels-python", default=None)
    parser.add_argument("--smodels-database", default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    predictor = Predictor(open_database(workspaces=False))
    files = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in models().items():
            path = args.out / f"{name}.slha"
            model.to_slha(path, xsecs=predictor.cross_sections(model))
            files.append(str(path))
    if args.smodels_python:
        if not args.smodels_database:
            parser.error("--smodels-python needs --smodels-database (the unpacked v3.0.0 folder)")
        subprocess.run([args.smodels_python, str(HERE / "smodels_driver.py"),
                        args.smodels_database, str(args.out), *files], check=True)
    if not list(args.out.glob("*.json")):
        print(f"no SModelS output in {args.out}: give --smodels-python and --smodels-database")
        return
    subprocess.run([sys.executable, str(HERE / "compare_reference.py"), "--reference",
                    str(args.out)], check=True)
