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
limit). :func:`~protomodels.statistics.attach.attach_statistics` (or a
:class:`~protomodels.statistics.attach.LikelihoodBuilder` built once per database) gives each
prediction of :mod:`protomodels.theory` its statistics
(:class:`~protomodels.statistics.record.PredictionStatistics`: nll at mu = 1, 0 and mu-hat,
mu-hat, the likelihood object, the fallback); :mod:`~protomodels.statistics.checks` rejects bad
inputs first and :mod:`~protomodels.statistics.compilation_cache` keeps compiled fits across
processes.
"""
