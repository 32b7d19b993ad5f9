"""The three PDEs of the benchmark: domain, initial condition, true coefficient, parametrisation.

All live on x ∈ [−1, 1], t ∈ [0, 1]; one positive scalar coefficient c is unknown:

* Burgers     u_t + u u_x = ν u_xx,            ν = 0.01/π,  u(0, x) = −sin(πx),      u(t, ±1) = 0.
* Allen-Cahn  u_t = D u_xx + 5 (u − u³),        D = 1e-3,    u(0, x) = x² cos(πx),    u(t, ±1) = −1
  (the paper, Appendix E.3.2; solved by Chebyshev collocation, see :mod:`.spectral`).
* KdV         u_t + u u_x + δ u_xxx = 0,        δ = 0.0025,  u(0, x) = cos(πx),       periodic.
* ``allen_cahn_periodic`` — a named variant: Raissi et al.'s Allen-Cahn (D = 1e-4, periodic), not the
  paper's equation and not run by default.

Two unknowns (the Raissi et al. setting): Burgers and KdV also read the coefficient λ₁ of the nonlinear
term, ``u_t + λ₁ u u_x = ν u_xx`` and ``u_t + λ₁ u u_x + δ u_xxx = 0`` (true λ₁ = 1).

Burgers' Dirichlet problem is solved on the periodic domain [−1, 1): u0 = −sin(πx) is odd and
2-periodic, and the equation maps odd solutions to odd solutions (u odd ⇒ u u_x and u_xx odd), so the
periodic solution stays odd for all t. A function that is both odd and 2-periodic satisfies
u(1) = u(−1) = −u(1), hence u(t, ±1) = 0: the periodic solution *is* the Dirichlet solution.

Parametrisation (the meta parameter φ is a 0-d array):

* ``"log"`` (default of the ``smoke``/``cpu`` configs): c = exp(φ). Positive for every φ, and Adam's
  step size in φ is a *relative* step in c, which suits coefficients spanning decades.
* ``"sqrt"`` (the paper's choice for Burgers and Allen-Cahn): c = φ².
* ``"identity"`` (the paper's choice for KdV): c = φ; a non-positive φ raises :class:`UnstableSettingError`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

__all__ = [
    "Equation",
    "EQUATIONS",
    "PAPER_EQUATIONS",
    "PARAMETRISATIONS",
    "UnstableSettingError",
    "get_equation",
    "coefficient_from_phi",
    "phi_from_coefficient",
    "check_coefficient",
]


class UnstableSettingError(FloatingPointError):
    """A setting made the problem ill-posed or the solver blow up (NaN/inf, non-positive coefficient)."""


@dataclasses.dataclass(frozen=True)
class Equation:
    """One PDE ``u_t = c·linear(u) + nonlinear(u)`` (see the module docstring).

    Attributes:
      name: ``"burgers"``, ``"allen_cahn"`` or ``"kdv"``.
      coefficient_name: ``"nu"``, ``"D"`` or ``"delta"``.
      true_coefficient: the value that generated the reference data.
      initial_condition: ``x -> u(0, x)`` (array in, array out).
      linear_order: the derivative order of the coefficient's term (2: c u_xx, 3: −c u_xxx).
      paper_parametrisation: ``"sqrt"`` or ``"identity"`` (how the paper parametrised c).
      paper_init_range: the paper's range of the initial φ (in the paper's parametrisation).
      paper_outer_lr: the paper's Adam learning rate.
      reference_file: name of the reference ``.mat`` file.
      reference_coefficient: the coefficient the provided reference file is consistent with (equal to
        ``true_coefficient``; ``Allen_Cahn.mat`` matches D = 1e-3 with u(t, ±1) = −1, relative L2 1.6e-4
        against our Chebyshev solve, see the tests).
      boundary: ``"periodic"`` (Fourier solver; Burgers' Dirichlet problem is equivalent, see above) or
        ``"dirichlet"`` (Chebyshev solver with ``u(t, ±1) = boundary_value``).
      boundary_value: the Dirichlet value (ignored for periodic equations).
      nonlinear_unknown: True when the nonlinear term carries the second unknown λ₁ (Burgers, KdV).
    """

    name: str
    coefficient_name: str
    true_coefficient: float
    initial_condition: Callable
    linear_order: int
    paper_parametrisation: str
    paper_init_range: tuple[float, float]
    paper_outer_lr: float
    reference_file: str | None
    reference_coefficient: float
    boundary: str = "periodic"
    boundary_value: float = 0.0
    nonlinear_unknown: bool = False

    def linear_symbol(self, k, coefficient):
        """Fourier symbol of the coefficient's term: ``−c k²`` (order 2) or ``i c k³`` (−c ∂x³, order 3).

        ``k``: real wavenumbers, shape ``(M,)``; returns complex ``(M,)``.
        """
        k = jnp.asarray(k)
        if self.linear_order == 2:
            return (-coefficient * k**2).astype(_complex_of(k.dtype))
        return 1j * coefficient * k**3


def _complex_of(dtype) -> jnp.dtype:
    return jnp.complex128 if jnp.dtype(dtype) == jnp.float64 else jnp.complex64


def _burgers_ic(x):
    return -jnp.sin(math.pi * x)


def _allen_cahn_ic(x):
    return x**2 * jnp.cos(math.pi * x)


def _kdv_ic(x):
    return jnp.cos(math.pi * x)


EQUATIONS: dict[str, Equation] = {
    "burgers": Equation(
        "burgers",
        "nu",
        0.01 / math.pi,
        _burgers_ic,
        2,
        "sqrt",
        (0.0, 10.0),
        1e-2,
        "burgers.mat",
        0.01 / math.pi,
        nonlinear_unknown=True,
    ),
    "allen_cahn": Equation(
        "allen_cahn",
        "D",
        1e-3,
        _allen_cahn_ic,
        2,
        "sqrt",
        (0.0, 0.1),
        1e-2,
        "Allen_Cahn.mat",
        1e-3,
        boundary="dirichlet",
        boundary_value=-1.0,
    ),
    "kdv": Equation(
        "kdv", "delta", 0.0025, _kdv_ic, 3, "identity", (0.0, 0.01), 1e-3, "KdV.mat", 0.0025, nonlinear_unknown=True
    ),
    "allen_cahn_periodic": Equation(
        "allen_cahn_periodic", "D", 1e-4, _allen_cahn_ic, 2, "sqrt", (0.0, 0.1), 1e-2, None, 1e-4
    ),
}
#: The paper's three equations (the default of the CLI).
PAPER_EQUATIONS = ("burgers", "allen_cahn", "kdv")

PARAMETRISATIONS = ("log", "sqrt", "identity")


def get_equation(name: str) -> Equation:
    """The :class:`Equation` called ``name``; a clear error for unknown names."""
    if name not in EQUATIONS:
        raise ValueError(f"unknown equation {name!r}; choose one of {sorted(EQUATIONS)}")
    return EQUATIONS[name]


def _check_parametrisation(parametrisation: str) -> None:
    if parametrisation not in PARAMETRISATIONS:
        raise ValueError(f"parametrisation must be one of {PARAMETRISATIONS}, got {parametrisation!r}")


def coefficient_from_phi(phi, parametrisation: str):
    """c(φ): ``exp(φ)``, ``φ²`` or ``φ`` (works on traced arrays)."""
    _check_parametrisation(parametrisation)
    if parametrisation == "log":
        return jnp.exp(phi)
    if parametrisation == "sqrt":
        return phi**2
    return phi


def phi_from_coefficient(coefficient: float, parametrisation: str) -> float:
    """φ(c), the inverse of :func:`coefficient_from_phi` (positive root for ``"sqrt"``)."""
    _check_parametrisation(parametrisation)
    check_coefficient(coefficient, "coefficient")
    if parametrisation == "log":
        return float(np.log(coefficient))
    if parametrisation == "sqrt":
        return float(np.sqrt(coefficient))
    return float(coefficient)


def check_coefficient(coefficient, what: str = "coefficient") -> float:
    """Raises :class:`UnstableSettingError` unless ``coefficient`` is a finite number > 0."""
    value = float(np.asarray(coefficient))
    if not np.isfinite(value) or value <= 0.0:
        raise UnstableSettingError(
            f"{what} must be finite and > 0 (the PDE is ill-posed or the solver unstable otherwise), "
            f"got {value!r}; use the 'log' parametrisation or a smaller outer learning rate"
        )
    return value
