"""fg2u-bench-vision: dataset condensation (the (FG)²U paper's Table 1 task) with every fg2u estimator.

Modules: :mod:`~fg2u_bench_vision.data` (loaders), :mod:`~fg2u_bench_vision.model` (ConvNet),
:mod:`~fg2u_bench_vision.condensation` (the bi-level problem), :mod:`~fg2u_bench_vision.evaluate`,
:mod:`~fg2u_bench_vision.configs`, :mod:`~fg2u_bench_vision.estimators`, :mod:`~fg2u_bench_vision.plots`,
:mod:`~fg2u_bench_vision.run` (CLI). JAX is imported only by the modules that need it.
"""

__version__ = "0.1.0"
