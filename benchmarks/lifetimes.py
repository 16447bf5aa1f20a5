"""Long-lived particles against SModelS: writes five SLHA files (a metastable gluino, two
long-lived charginos with small mass splittings, a stable and a long-lived stau), runs SModelS
on them when a Python with SModelS 3.0.x is given (optional; SModelS is not a dependency), and
compares our predictions with its (``compare_reference.py --reference``).

Usage: python benchmarks/lifetimes.py [--out DIR] [--smodels-python PYTHON
           --smodels-database UNPACKED_DATABASE_DIR]

Without ``--smodels-python`` an existing ``DIR/*.json`` of an earlier SModelS run is compared.
"""

from __future__ import annotations

from smodels_check import cross_check

from protomodels.theory.protomodel import Decay, Protomodel

G, N1, C1, STAU = 1000021, 1000022, 1000024, 1000015


def models() -> dict[str, Protomodel]:
    """The test spectra (widths in GeV; c tau = 1.97e-16 m / width)."""
    return {
        "gluino_metastable": Protomodel(  # c tau 3.3 cm
            masses={G: 1500.0, N1: 100.0},
            decays={G: (Decay(N1, (1, -1), 0.5), Decay(N1, (2, -2), 0.5))}, widths={G: 6e-15}),
        "chargino_longlived": Protomodel(  # c tau 1.5 m, 200 MeV splitting
            masses={C1: 500.2, N1: 500.0}, decays={C1: (Decay(N1, (211,), 1.0),)},
            widths={C1: 1.3e-16}),
        "chargino_disappearing": Protomodel(  # c tau 10 cm
            masses={C1: 400.2, N1: 400.0}, decays={C1: (Decay(N1, (211,), 1.0),)},
            widths={C1: 2e-15}),
        "stau_stable": Protomodel(masses={STAU: 400.0, N1: 100.0}, decays={},
                                  widths={STAU: 0.0}, allow_stable=True),
        "stau_longlived": Protomodel(  # c tau 2 m
            masses={STAU: 400.0, N1: 100.0}, decays={STAU: (Decay(N1, (15,), 1.0),)},
            widths={STAU: 1e-16}),
    }


def main() -> None:
    cross_check(__doc__, "lifetimes-check", models)


if __name__ == "__main__":
    main()
