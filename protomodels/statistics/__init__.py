"""Statistics: likelihoods of theory predictions, best-fit signal strengths and r-values.

Each kind of result has a small module of pure ``jax.numpy`` functions of the signal yields and
of the signal strength mu (jittable, vectorised over predictions, differentiable):

- :mod:`~protomodels.statistics.truncated_gaussian`: upper-limit results (observed and expected
  limits);
- :mod:`~protomodels.statistics.single_region`: one efficiency-map signal region;
- :mod:`~protomodels.statistics.simplified`: several regions with a covariance matrix.

:func:`~protomodels.statistics.evaluate.attach_statistics` fills the predictions of
:mod:`protomodels.theory` with L(1), L(0), L_max, mu-hat and r-values.
"""
