"""fg2u — memory-light meta-gradients for large-scale bi-level optimisation.

The core package is backend-agnostic and imports neither JAX nor PyTorch:

* [`fg2u.problem`][fg2u.problem] — [`UnrolledProblem`][fg2u.problem.UnrolledProblem],
  [`BlackBoxProblem`][fg2u.problem.BlackBoxProblem] and their protocols.
* [`fg2u.estimator`][fg2u.estimator] — the [`MetaGradientEstimator`][fg2u.estimator.MetaGradientEstimator] protocol and
  [`Aux`][fg2u.estimator.Aux].
* [`fg2u.directions`][fg2u.directions] — tangent distributions with ``E[v vᵀ] = I``.
* `fg2u.experiment` — the experiment layer every benchmark runs on: estimator specs, the one result-record
  schema, provenance, the runner.

Backends load only when asked for: ``import fg2u.jax`` or ``import fg2u.torch``.
"""

from fg2u.directions import (
    DirectionDistribution,
    Gaussian,
    OrthogonalBlocks,
    Rademacher,
    Sphere,
    get_distribution,
)
from fg2u.estimator import Aux, MetaGradientEstimator
from fg2u.experiment.records import ResultRecord, append_records, make_record, read_records
from fg2u.problem import BilevelProblem, BlackBoxObjective, BlackBoxProblem, UnrolledProblem

__version__ = "0.1.0"

__all__ = [
    "Aux",
    "BilevelProblem",
    "BlackBoxObjective",
    "BlackBoxProblem",
    "DirectionDistribution",
    "Gaussian",
    "MetaGradientEstimator",
    "OrthogonalBlocks",
    "Rademacher",
    "ResultRecord",
    "Sphere",
    "UnrolledProblem",
    "append_records",
    "get_distribution",
    "make_record",
    "read_records",
]
