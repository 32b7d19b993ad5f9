"""Generated ground truths of the tests go to a temporary cache, never to ~/.cache; the benchmark turns JAX's
float64 on for its process (``PDE.configure``), so every test gets the flag back as it was."""

import jax
import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: end-to-end runs and gradient checks that compile whole solves (tens of s)"
    )


@pytest.fixture(autouse=True, scope="session")
def _pde_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("FG2U_PDE_CACHE", str(tmp_path_factory.mktemp("pde-cache")))
    mp.setenv("FG2U_PDE_JAX_CACHE", "off")  # no compiled executables left in the home folder
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _restore_x64():
    before = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", before)
