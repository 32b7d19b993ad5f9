"""Reference files and observation sampling."""

import os
from pathlib import Path

import numpy as np
import pytest

from fg2u_bench_pde.observations import sample_observations
from fg2u_bench_pde.reference import ENV_VAR, MissingDataError, load_reference

DATA_DIR = Path(os.environ.get(ENV_VAR, Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "pde"))
needs_data = pytest.mark.skipif(
    not (DATA_DIR / "burgers.mat").is_file(),
    reason=f"reference data absent: put the .mat files in {DATA_DIR} or set {ENV_VAR}",
)


@needs_data
def test_references_load_in_one_layout():
    shapes = {"burgers": (100, 256), "kdv": (201, 512), "allen_cahn": (101, 201)}
    for name, shape in shapes.items():
        ref = load_reference(name, DATA_DIR)
        assert ref.u.shape == shape == (ref.t.size, ref.x.size)
    burgers = load_reference("burgers", DATA_DIR)
    np.testing.assert_allclose(burgers.u[0], -np.sin(np.pi * burgers.x), atol=1e-12)
    ac = load_reference("allen_cahn", DATA_DIR)
    np.testing.assert_allclose(ac.u[0], ac.x**2 * np.cos(np.pi * ac.x), atol=1e-12)
    kdv = load_reference("kdv", DATA_DIR)
    np.testing.assert_allclose(kdv.u[0], np.cos(np.pi * kdv.x), atol=1e-12)


def test_missing_data_errors_name_the_file_and_the_place(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(MissingDataError, match=ENV_VAR):
        load_reference("burgers", None)
    with pytest.raises(MissingDataError, match=r"KdV\.mat.*" + str(tmp_path).replace("\\", "\\\\")):
        load_reference("kdv", tmp_path)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(MissingDataError, match=r"Allen_Cahn\.mat"):
        load_reference("allen_cahn", None)
    with pytest.raises(ValueError, match="unknown equation"):
        load_reference("heat", tmp_path)


def test_malformed_file_is_rejected(tmp_path):
    import scipy.io

    scipy.io.savemat(tmp_path / "burgers.mat", {"x": np.zeros((1, 4)), "tt": np.zeros((1, 3))})
    with pytest.raises(ValueError, match="missing"):
        load_reference("burgers", tmp_path)
    scipy.io.savemat(
        tmp_path / "burgers.mat", {"x": np.zeros((1, 4)), "tt": np.arange(3.0)[None], "uu": np.zeros((3, 4))}
    )
    with pytest.raises(ValueError, match="shape"):
        load_reference("burgers", tmp_path)


def test_observations_are_seeded_distinct_grid_points_after_t0():
    x, t = np.linspace(-1, 1, 30), np.linspace(0, 1, 20)
    u = np.add.outer(10 * t, x)
    a = sample_observations(x, t, u, num_points=64, seed=3)
    b = sample_observations(x, t, u, num_points=64, seed=3)
    c = sample_observations(x, t, u, num_points=64, seed=4)
    np.testing.assert_array_equal(a.u, b.u)
    assert not np.array_equal(a.u, c.u)
    assert len(set(zip(a.t_index, a.x_index))) == 64 and a.t_index.min() >= 1
    np.testing.assert_array_equal(a.u, u[a.t_index, a.x_index])
    np.testing.assert_array_equal(a.t, t[a.t_index])
    assert sample_observations(x, t, u, num_points=64, seed=3, include_initial_time=True).t_index.min() >= 0


def test_observation_noise_has_the_requested_level():
    x, t = np.linspace(-1, 1, 200), np.linspace(0, 1, 51)
    u = np.sin(np.pi * np.add.outer(t, x))
    clean = sample_observations(x, t, u, num_points=8000, seed=0)
    noisy = sample_observations(x, t, u, num_points=8000, noise_level=0.1, seed=0)
    ratio = np.std(noisy.u - clean.u) / (0.1 * np.std(u))
    assert abs(ratio - 1) < 0.05  # sd of a sample std over 8000 draws: 1/sqrt(16000) ≈ 0.8 %


def test_bad_observation_requests():
    x, t = np.linspace(-1, 1, 4), np.linspace(0, 1, 3)
    u = np.zeros((3, 4))
    with pytest.raises(ValueError, match="exceeds"):
        sample_observations(x, t, u, num_points=9)
    with pytest.raises(ValueError, match="noise_level"):
        sample_observations(x, t, u, num_points=2, noise_level=-1)
    with pytest.raises(ValueError, match="shape"):
        sample_observations(x, t, u.T, num_points=2)


def test_grid_layout_is_the_papers_8x8_interior_grid():
    x, t = np.linspace(-1, 1, 201), np.linspace(0, 1, 101)
    u = np.add.outer(10 * t, x)
    a = sample_observations(x, t, u, num_points=64, seed=3, layout="grid")
    b = sample_observations(x, t, u, num_points=64, seed=4, layout="grid")
    np.testing.assert_array_equal(a.u, b.u)  # no noise: the seed does not matter
    assert sorted(set(a.t_index)) == [11, 22, 33, 44, 56, 67, 78, 89]  # round(linspace(0, 100, 10)[1:-1])
    assert len(set(a.x_index)) == 8 and a.x_index.min() > 0 and a.x_index.max() < 200
    assert len(set(zip(a.t_index, a.x_index))) == 64
    noisy = sample_observations(x, t, u, num_points=64, seed=3, layout="grid", noise_level=0.01)
    assert 0 < np.max(np.abs(noisy.u - a.u)) < 0.05 * np.std(u)
    with pytest.raises(ValueError, match="square"):
        sample_observations(x, t, u, num_points=60, layout="grid")
    with pytest.raises(ValueError, match="layout"):
        sample_observations(x, t, u, num_points=64, layout="lattice")


def test_solver_reference_is_generated_once_and_cached(tmp_path):
    import jax

    from fg2u_bench_pde.equations import get_equation
    from fg2u_bench_pde.reference import resolve_cache_dir, solver_reference
    from fg2u_bench_pde.spectral import SpectralSettings, solve

    x, t = np.linspace(-1, 1, 9), 0.05 * np.arange(3)
    settings = SpectralSettings(32, 0.05, 3, 2)
    with jax.enable_x64(True):
        first = solver_reference("kdv", x, t, settings, tmp_path)
        assert first.path.startswith(str(tmp_path)) and len(list(tmp_path.glob("kdv-*.npz"))) == 1
        np.testing.assert_array_equal(first.u, solve(get_equation("kdv"), 0.0025, settings, x))
        again = solver_reference("kdv", x, t, settings, tmp_path)
        np.testing.assert_array_equal(again.u, first.u)
        solver_reference("kdv", x, t, SpectralSettings(32, 0.05, 3, 4), tmp_path)  # other settings, other file
        assert len(list(tmp_path.glob("kdv-*.npz"))) == 2
        with pytest.raises(ValueError, match="output times"):
            solver_reference("kdv", x, t, SpectralSettings(32, 0.1, 3, 2), tmp_path)
    assert resolve_cache_dir(tmp_path / "c") == tmp_path / "c"
