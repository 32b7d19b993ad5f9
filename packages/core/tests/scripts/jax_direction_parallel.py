"""Worker for test_jax_parallel.py: 4 simulated CPU devices run DirectionParallel(FG2U / FG2U_ZO) and
the single-device estimators on the same key; the results go to a JSON file.

    python jax_direction_parallel.py --out result.json
"""

import argparse
import json
import os

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import fg2u  # noqa: E402
import fg2u.jax as fj  # noqa: E402

jax.config.update("jax_enable_x64", True)  # float64: the comparison is not blurred by float32 rounding
ZO_EPS = 1e-3


def make_problem():
    """θ_{t+1} = θ_t − η(Aθ_t − tanh(φ)), F = ‖θ_T − 1‖², φ a two-leaf pytree."""
    A = jnp.diag(jnp.arange(1.0, 6.0, dtype=jnp.float64))
    problem = fg2u.UnrolledProblem(
        init=lambda phi: jnp.zeros(5, jnp.float64),
        step=lambda theta, phi, _: theta - 0.1 * (A @ theta - jnp.tanh(phi["a"]) - phi["b"]),
        outer_loss=lambda theta, phi, _: jnp.sum((theta - 1.0) ** 2),
        num_steps=20,
    )
    return problem, {"a": jnp.linspace(-1.0, 1.0, 5, dtype=jnp.float64), "b": jnp.full(5, 0.1, jnp.float64)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    problem, phi = make_problem()
    key = jax.random.PRNGKey(42)
    mesh = fj.direction_mesh(4)
    out = {"num_devices": len(jax.devices()), "zo_eps": ZO_EPS}
    for name, estimator in {"fg2u": fj.FG2U(8, chunk_size=1), "zo": fj.FG2U_ZO(8, eps=ZO_EPS)}.items():
        parallel = fj.DirectionParallel(estimator, mesh)
        single, single_aux = estimator(problem, phi, key)
        sharded, sharded_aux = jax.jit(parallel)(problem, phi, key)
        per_device, _ = parallel.per_device(problem, phi, key)
        out[name] = {
            "single": jax.tree_util.tree_map(lambda x: x.tolist(), single),
            "sharded": jax.tree_util.tree_map(lambda x: x.tolist(), sharded),
            "per_device": jax.tree_util.tree_map(lambda x: x.tolist(), per_device),
            "losses": [float(single_aux.outer_loss), float(sharded_aux.outer_loss)],
            "dtype": str(sharded["a"].dtype),
        }
    with open(args.out, "w") as f:
        json.dump(out, f)
