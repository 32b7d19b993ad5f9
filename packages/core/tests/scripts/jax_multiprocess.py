"""Worker for test_jax_multiprocess.py: one of several real processes joined by ``jax.distributed`` on
localhost (CPU collectives over gloo). Every process builds a mesh over all processes' devices, runs
``DirectionParallel(FG2U(b))`` and, on its own device alone, the single-process ``FG2U(b)`` for the same key;
both go to ``<out>`` as JSON.

    python jax_multiprocess.py --process-id 0 --num-processes 2 --port 12355 --out rank0.json
"""

import argparse
import json

import jax

jax.config.update("jax_enable_x64", True)  # float64: the comparison is not blurred by float32 rounding
jax.config.update("jax_cpu_collectives_implementation", "gloo")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import fg2u  # noqa: E402
import fg2u.jax as fj  # noqa: E402


def make_problem():
    """θ_{t+1} = θ_t − η(Aθ_t − tanh(φ_a) − φ_b), F = ‖θ_T − 1‖², φ a two-leaf pytree."""
    A = jnp.diag(jnp.arange(1.0, 6.0, dtype=jnp.float64))
    problem = fg2u.UnrolledProblem(
        init=lambda phi: jnp.zeros(5, jnp.float64),
        step=lambda theta, phi, _: theta - 0.1 * (A @ theta - jnp.tanh(phi["a"]) - phi["b"]),
        outer_loss=lambda theta, phi, _: jnp.sum((theta - 1.0) ** 2),
        num_steps=20,
    )
    return problem, {"a": jnp.linspace(-1.0, 1.0, 5, dtype=jnp.float64), "b": jnp.full(5, 0.1, jnp.float64)}


def local_value(tree):
    """A replicated global array's value, read from this process's shard."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x.addressable_data(0)).tolist(), tree)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--process-id", type=int, required=True)
    parser.add_argument("--num-processes", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--num-directions", type=int, default=8)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    jax.distributed.initialize(
        coordinator_address=f"localhost:{args.port}",
        num_processes=args.num_processes,
        process_id=args.process_id,
        initialization_timeout=120,
    )
    problem, phi = make_problem()
    key = jax.random.PRNGKey(42)
    mesh = fj.direction_mesh()  # all processes' devices
    est = fj.FG2U(num_directions=args.num_directions, chunk_size=2)
    grad, aux = jax.jit(fj.DirectionParallel(est, mesh))(problem, phi, key)
    with jax.default_device(jax.local_devices()[0]):
        single, single_aux = jax.jit(est.__call__)(problem, phi, key)
    json.dump(
        {
            "process_index": jax.process_index(),
            "process_count": jax.process_count(),
            "global_devices": len(jax.devices()),
            "local_devices": len(jax.local_devices()),
            "grad": local_value(grad),
            "loss": float(np.asarray(aux.outer_loss.addressable_data(0))),
            "single_grad": jax.tree_util.tree_map(lambda x: np.asarray(x).tolist(), single),
            "single_loss": float(single_aux.outer_loss),
        },
        open(args.out, "w"),
    )
    jax.distributed.shutdown()
