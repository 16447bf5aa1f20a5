"""Random valid protomodels from the template (for benchmarks, tests and walker starts)."""

from __future__ import annotations

import dataclasses

import numpy as np

from protomodels.theory.particles import LSP, Template
from protomodels.theory.protomodel import Decay, Protomodel

__all__ = ["FAMILIES", "family_protomodel", "random_protomodel"]


def __dir__() -> list[str]:
    return __all__


def random_protomodel(
    rng: np.random.Generator,
    template: Template,
    *,
    n_particles: tuple[int, int] = (1, 4),
    lsp_mass: tuple[float, float] = (50.0, 800.0),
    max_mass: float = 2400.0,
    min_gap: float = 1.0,
) -> Protomodel:
    """A random protomodel: the LSP plus ``n_particles`` template particles above it, each
    decaying through a random non-empty subset of its open template channels (Dirichlet BRs).

    Args:
        rng: NumPy random generator (the only source of randomness).
        template: the particles and allowed decays.
        n_particles: inclusive range of the number of particles besides the LSP.
        lsp_mass, max_mass: GeV.
        min_gap: minimal mass above the LSP (GeV).
    """
    if not 0.0 < lsp_mass[0] <= lsp_mass[1]:
        msg = f"lsp_mass must be a range of positive masses (GeV), got {lsp_mass}"
        raise ValueError(msg)
    candidates = [p for p in template.particles if p != LSP]
    while True:
        k = int(rng.integers(n_particles[0], n_particles[1] + 1))
        chosen = [int(p) for p in rng.choice(candidates, size=k, replace=False)]
        m_lsp = float(rng.uniform(*lsp_mass))
        masses = {LSP: max(round(m_lsp, 1), 0.1)}
        for p in chosen:
            masses[p] = round(float(rng.uniform(m_lsp + min_gap, max_mass)), 1)
        decays: dict[int, tuple[Decay, ...]] = {}
        ok = True
        for p in sorted(chosen, key=lambda q: masses[q]):
            open_channels = [
                c
                for c in template.channels_of(p)
                if abs(c.daughter) in masses and masses[abs(c.daughter)] < masses[p]
            ]
            if not open_channels:
                ok = False
                break
            n_open = int(rng.integers(1, len(open_channels) + 1))
            picked = rng.choice(len(open_channels), size=n_open, replace=False)
            brs = rng.dirichlet(np.ones(n_open))
            decays[p] = tuple(
                Decay(open_channels[i].daughter, open_channels[i].sm, float(b))
                for i, b in zip(picked, brs, strict=True)
            )
        if ok:
            return Protomodel(masses=masses, decays=decays, name="random")


_EWKINOS = (1000023, 1000024, 1000025, 1000035, 1000037)
_SLEPTONS = (1000011, 1000012, 1000013, 1000014, 1000015, 1000016, 2000011, 2000013, 2000015)
#: the families of :func:`family_protomodel`
FAMILIES = ("template", "ewkinos", "compressed", "sleptons", "long-lived sleptons")


def _sub(template: Template, pdgs: tuple[int, ...]) -> Template:
    keep = {LSP, *pdgs}
    return Template(
        tuple(q for q in template.particles if q in keep),
        tuple(c for c in template.channels if c.mother in keep),
    )


def family_protomodel(rng: np.random.Generator, template: Template, family: str) -> Protomodel:
    """A random protomodel of one family (:data:`FAMILIES`): the whole template (LSP below
    600 GeV, particles up to 1.6 TeV), electroweakinos only (up to 1.2 TeV), compressed
    electroweakinos (all within 5-60 GeV of an LSP of 80-300 GeV: the soft-lepton searches),
    sleptons only, or long-lived sleptons (widths 1e-18 to 1e-14 GeV: displaced leptons). For
    benchmarks that need models reaching given results (the pyhf ones)."""
    if family == "template":
        return random_protomodel(rng, template, lsp_mass=(1.0, 600.0), max_mass=1600.0)
    if family == "ewkinos":
        return random_protomodel(rng, _sub(template, _EWKINOS), lsp_mass=(1.0, 500.0),
                                 max_mass=1200.0)
    if family == "compressed":
        m = float(rng.uniform(80.0, 300.0))
        return random_protomodel(rng, _sub(template, _EWKINOS), lsp_mass=(m, m),
                                 max_mass=m + 60.0, min_gap=5.0)
    if family not in FAMILIES:
        msg = f"family must be one of {', '.join(FAMILIES)}, got {family!r}"
        raise ValueError(msg)
    model = random_protomodel(rng, _sub(template, _SLEPTONS), lsp_mass=(1.0, 400.0),
                              max_mass=900.0)
    if family == "sleptons":
        return model
    widths = {q: float(10 ** rng.uniform(-18, -14)) for q in model.masses if q in _SLEPTONS}
    return dataclasses.replace(model, widths=widths)
