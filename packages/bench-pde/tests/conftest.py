"""Generated ground truths of the tests go to a temporary cache, never to ~/.cache."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _pde_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("FG2U_PDE_CACHE", str(tmp_path_factory.mktemp("pde-cache")))
    yield
    mp.undo()
