"""The meta-statistical view of the database: local significances of every signal region and
upper-limit map, p-value histograms under the SM and under a protomodel, and the small-excess
view (searches sensitive to a model that did not exclude it, with Bayes factors)."""

from protomodels.metastatistics.deviations import (
    Deviation,
    SignalHypothesis,
    region_deviations,
    upper_limit_deviations,
)
from protomodels.metastatistics.histogram import Histogram, pvalue_histogram, z_histogram
from protomodels.metastatistics.sensitivity import (
    SensitiveResult,
    combination_log_bayes_factor,
    log_bayes_factor,
    sensitive_unexcluded,
)
from protomodels.metastatistics.significance import (
    p_from_z,
    region_pvalues,
    upper_limit_significance,
    z_from_p,
)

__all__ = [
    "Deviation",
    "Histogram",
    "SensitiveResult",
    "SignalHypothesis",
    "combination_log_bayes_factor",
    "log_bayes_factor",
    "p_from_z",
    "pvalue_histogram",
    "region_deviations",
    "region_pvalues",
    "sensitive_unexcluded",
    "upper_limit_deviations",
    "upper_limit_significance",
    "z_from_p",
    "z_histogram",
]


def __dir__() -> list[str]:
    return __all__
