"""Random valid protomodels from the template (for benchmarks, tests and walker starts)."""

from __future__ import annotations

import numpy as np

from protomodels.theory.particles import LSP, Template
from protomodels.theory.protomodel import Decay, Protomodel

__all__ = ["random_protomodel"]


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
    candidates = [p for p in template.particles if p != LSP]
    while True:
        k = int(rng.integers(n_particles[0], n_particles[1] + 1))
        chosen = [int(p) for p in rng.choice(candidates, size=k, replace=False)]
        m_lsp = float(rng.uniform(*lsp_mass))
        masses = {LSP: round(m_lsp, 1)}
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
