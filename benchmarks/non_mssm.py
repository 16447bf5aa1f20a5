"""Particles beyond the MSSM against SModelS: writes six SLHA files (a Z' decaying into dark
matter and jets, SModelS's own ``TRV1_1800_300_300`` example; a heavy-flavour Z'; a scalar
mediator; displaced R-parity violating decays of a neutralino (from gluinos) and of stops; an
MSSM spectrum whose neutralino decays into the heavy Higgs H0), runs SModelS on them when a
Python with SModelS 3.0.x is given (optional; SModelS is not a dependency), and compares our
predictions with its (``compare_reference.py --reference``).

Usage: python benchmarks/non_mssm.py [--out DIR] [--smodels-python PYTHON
           --smodels-database UNPACKED_DATABASE_DIR]

Without ``--smodels-python`` an existing ``DIR/*.json`` of an earlier SModelS run is compared.
"""

from __future__ import annotations

from smodels_check import cross_check

from protomodels.theory.particles import BsmProperties
from protomodels.theory.protomodel import Decay, Protomodel

G, N1, N2, C1, STOP, H0 = 1000021, 1000022, 1000023, 1000024, 1000006, 35
DM, SCALAR, ZPRIME = 52, 54, 55
DARK = {DM: BsmProperties(0.0, 1, 0.5, antiparticle=True)}  # Dirac dark matter


def models() -> dict[str, Protomodel]:
    """The test spectra (GeV; cross sections in fb by sqrt(s) in TeV)."""
    z = {ZPRIME: BsmProperties(0.0, 1, 1.0, antiparticle=False), **DARK}
    s = {SCALAR: BsmProperties(0.0, 1, 0.0, antiparticle=False), **DARK}
    return {
        "zprime_dm": Protomodel(  # as SModelS's inputFiles/slha/TRV1_1800_300_300.slha
            masses={ZPRIME: 1800.0, DM: 300.0},
            decays={ZPRIME: (Decay(DM, (), 0.7, (-DM,)), Decay(0, (1, -1), 0.15),
                             Decay(0, (2, -2), 0.15))},
            widths={ZPRIME: 17.8, DM: 0.0}, xsecs={(ZPRIME,): {8.0: 150.0, 13.0: 1296.7}},
            properties=z, allow_stable=True),
        "zprime_heavy_flavour": Protomodel(
            masses={ZPRIME: 2500.0, DM: 100.0},
            decays={ZPRIME: (Decay(0, (5, -5), 0.4), Decay(0, (6, -6), 0.4),
                             Decay(DM, (), 0.2, (-DM,)))},
            widths={ZPRIME: 50.0, DM: 0.0}, xsecs={(ZPRIME,): {8.0: 12.0, 13.0: 150.0}},
            properties=z, allow_stable=True),
        "scalar_mediator": Protomodel(
            masses={SCALAR: 500.0, DM: 100.0}, decays={SCALAR: (Decay(DM, (), 1.0, (-DM,)),)},
            widths={SCALAR: 20.0, DM: 0.0}, xsecs={(SCALAR,): {8.0: 1500.0, 13.0: 5000.0}},
            properties=s, allow_stable=True),
        "rpv_gluino_displaced": Protomodel(  # neutralino c tau 0.3 m
            masses={G: 2000.0, N1: 1000.0},
            decays={G: (Decay(N1, (1, -1), 1.0),), N1: (Decay(0, (2, 1, 3), 1.0),)},
            widths={G: 1.0, N1: 6.6e-16}, allow_stable=True),
        "rpv_stop_displaced": Protomodel(  # c tau 2 cm
            masses={STOP: 1000.0}, decays={STOP: (Decay(0, (1, -13), 1.0),)},
            widths={STOP: 1e-14}, allow_stable=True),
        "neutralino_to_heavy_higgs": Protomodel(
            masses={N2: 600.0, C1: 600.0, N1: 100.0, H0: 300.0},
            decays={N2: (Decay(N1, (23,), 0.5), Decay(N1, (), 0.5, (H0,))),
                    C1: (Decay(N1, (24,), 1.0),), H0: (Decay(0, (5, -5), 1.0),)},
            widths={N2: 1.0, C1: 1.0, H0: 2.0, N1: 0.0}, allow_stable=True),
    }


def main() -> None:
    cross_check(__doc__, "non-mssm-check", models)


if __name__ == "__main__":
    main()
