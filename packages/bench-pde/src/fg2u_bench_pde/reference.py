"""Reference solutions: our own high-resolution solve (the default, generated once and cached), or the
MATLAB ``.mat`` files of the paper's authors (an optional cross-check), read with ``scipy.io.loadmat``.

Cache of the generated references: ``--cache-dir``, else ``$FG2U_PDE_CACHE``, else
``$XDG_CACHE_HOME/fg2u/pde`` (``~/.cache/fg2u/pde``); one ``.npz`` per (equation, coefficients, grid,
discretisation, solver version), written atomically, so deleting the folder is always safe.

The folder comes from ``--data-dir`` or the environment variable ``FG2U_PDE_DATA`` (suggested value:
``../shared/data/pde`` from the project root); it is never assumed silently. The files differ in key
names and axis order; :func:`load_reference` returns them in one layout, ``u`` with shape ``(n_t, n_x)``.

| file            | keys              | stored layout |
|-----------------|-------------------|---------------|
| burgers.mat     | x, tt, uu         | uu: (n_x, n_t) |
| KdV.mat         | x, tt, uu         | uu: (n_x, n_t) |
| Allen_Cahn.mat  | x, t, u           | u:  (n_t, n_x) |
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from fg2u_bench_pde.equations import get_equation

__all__ = [
    "ENV_VAR",
    "CACHE_ENV_VAR",
    "Reference",
    "MissingDataError",
    "resolve_data_dir",
    "resolve_cache_dir",
    "load_reference",
    "solver_reference",
]

ENV_VAR = "FG2U_PDE_DATA"
CACHE_ENV_VAR = "FG2U_PDE_CACHE"
#: Bump when the solver's numerics change (invalidates cached references).
SOLVER_VERSION = 2

_LAYOUT = {  # equation: (x key, t key, u key, u stored as (n_x, n_t)?)
    "burgers": ("x", "tt", "uu", True),
    "kdv": ("x", "tt", "uu", True),
    "allen_cahn": ("x", "t", "u", False),
}


class MissingDataError(FileNotFoundError):
    """A reference file is missing; the message says which file to put where."""


@dataclasses.dataclass(frozen=True)
class Reference:
    """A reference solution on its grid: ``x (n_x,)``, ``t (n_t,)``, ``u (n_t, n_x)`` (float64)."""

    equation: str
    x: np.ndarray
    t: np.ndarray
    u: np.ndarray
    path: str

    @property
    def output_dt(self) -> float:
        return float(self.t[1] - self.t[0])


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """``data_dir`` if given, else ``$FG2U_PDE_DATA``, else None (no reference data)."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else None


def load_reference(equation: str, data_dir: str | os.PathLike | None) -> Reference:
    """Loads the reference of ``equation`` from ``data_dir`` (or ``$FG2U_PDE_DATA``).

    Raises:
      MissingDataError: no folder given, or the file is absent; the message names file and folder.
      ValueError: the file does not have the expected keys, shapes or a uniform time grid.
    """
    eq = get_equation(equation)
    folder = resolve_data_dir(data_dir)
    if folder is None:
        raise MissingDataError(
            f"no PDE data folder given: pass --data-dir DIR or set {ENV_VAR}=DIR, where DIR holds "
            f"{eq.reference_file} (e.g. ../shared/data/pde from the project root); or use --data-source solver"
        )
    path = folder / eq.reference_file
    if not path.is_file():
        raise MissingDataError(
            f"reference file {path} not found: put {eq.reference_file} (from the paper authors' "
            f"PDE_coefs_discovery/Data) into {folder}, or use --data-source solver"
        )
    import scipy.io

    data = scipy.io.loadmat(path)
    x_key, t_key, u_key, transposed = _LAYOUT[equation]
    missing = [k for k in (x_key, t_key, u_key) if k not in data]
    if missing:
        raise ValueError(f"{path}: expected keys {[x_key, t_key, u_key]}, missing {missing}")
    x = np.asarray(data[x_key], dtype=np.float64).ravel()
    t = np.asarray(data[t_key], dtype=np.float64).ravel()
    u = np.asarray(data[u_key], dtype=np.float64)
    u = u.T if transposed else u
    if u.shape != (t.size, x.size):
        raise ValueError(f"{path}: {u_key} has shape {u.shape}, expected (n_t, n_x) = {(t.size, x.size)}")
    steps = np.diff(t)
    if t.size < 2 or abs(t[0]) > 1e-12 or np.max(np.abs(steps - steps[0])) > 1e-9:
        raise ValueError(f"{path}: times must be uniform and start at 0, got {t[:3]}…")
    return Reference(equation=equation, x=x, t=t, u=u, path=str(path))


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` if given, else ``$FG2U_PDE_CACHE``, else ``$XDG_CACHE_HOME/fg2u/pde`` (``~/.cache/...``)."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fg2u" / "pde"


def solver_reference(
    equation: str, x: np.ndarray, t: np.ndarray, settings, cache_dir=None, *, use_cache: bool = True
) -> Reference:
    """Our solver at the true coefficient of ``equation`` on the grid ``t × x``, with the fine ``settings``
    (a :class:`fg2u_bench_pde.spectral.SpectralSettings` whose output times are ``t``).

    Loaded from the cache when present (see the module docstring), else computed and stored; ``use_cache``
    False neither reads nor writes. Raises :class:`~fg2u_bench_pde.equations.UnstableSettingError` when the
    solve blows up.
    """
    from fg2u_bench_pde.spectral import solve

    eq = get_equation(equation)
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if settings.num_outputs != t.size or abs(settings.output_dt - (t[1] - t[0])) > 1e-12:
        raise ValueError(f"settings output times ({settings.num_outputs} × {settings.output_dt}) do not match t")
    meta = {
        "equation": equation,
        "coefficient": eq.true_coefficient,
        "boundary": eq.boundary,
        "boundary_value": eq.boundary_value,
        "settings": dataclasses.asdict(settings),
        "x": hashlib.sha256(x.tobytes()).hexdigest(),
        "t": [t.size, float(t[1] - t[0])],
        "solver_version": SOLVER_VERSION,
    }
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    path = resolve_cache_dir(cache_dir) / f"{equation}-{digest}.npz"
    if use_cache and path.is_file():
        with np.load(path) as data:
            u = data["u"]
        if u.shape == (t.size, x.size):
            return Reference(equation=equation, x=x, t=t, u=u, path=str(path))
    u = solve(eq, eq.true_coefficient, settings, x)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, u=u, meta=json.dumps(meta))
            os.replace(tmp, path)
        except OSError as error:  # a read-only home is no reason to fail the run
            import warnings

            warnings.warn(f"could not cache the {equation} reference in {path.parent}: {error}", stacklevel=2)
    return Reference(equation=equation, x=x, t=t, u=u, path=str(path) if use_cache else "generated")
