"""fg2u-bench-pde — data-driven discovery of PDE coefficients (Burgers, Allen-Cahn, KdV) with FG²U.

Modules: :mod:`.equations` (the PDEs), :mod:`.spectral` (pseudo-spectral ETDRK4 solver),
:mod:`.reference` (ground truth: our cached fine solve, or the authors' files), :mod:`.observations`,
:mod:`.quadrature` (the paper's fixed-quadrature zeroth-order estimator), :mod:`.pinn`,
:mod:`.problems` (the bi-level problems), :mod:`.configs`, :mod:`.run` and :mod:`.cli`
(``python -m fg2u_bench_pde``).
"""

__version__ = "0.1.0"
