"""Statistics: likelihoods of theory predictions, best-fit signal strengths and r-values.

Each kind of result has a small module of pure ``jax.numpy`` functions of the signal yields and
of the signal strength mu (jittable, vectorised over predictions, differentiable):

- :mod:`~protomodels.statistics.truncated_gaussian`: upper-limit results (observed and expected
  limits);
- :mod:`~protomodels.statistics.single_region`: one efficiency-map signal region;
- :mod:`~protomodels.statistics.simplified`: several regions with a covariance matrix;
- :mod:`~protomodels.statistics.cls`: the asymptotic CLs upper limit they share.

:mod:`~protomodels.statistics.likelihood` wraps them behind one protocol,
:class:`~protomodels.statistics.likelihood.Likelihood` (nll(mu), mu-hat, nll_max, upper
limit). :func:`~protomodels.statistics.evaluate.attach_statistics` (or an
:class:`~protomodels.statistics.evaluate.Evaluator` built once per database) fills the
predictions of :mod:`protomodels.theory` with L(1), L(0), L_max, mu-hat, r-values and the
likelihood object; :mod:`~protomodels.statistics.checks` rejects bad inputs first and
:mod:`~protomodels.statistics.compilation_cache` keeps compiled fits across processes.
"""
