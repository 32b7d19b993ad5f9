"""Direction-parallel FG²U over a device mesh (one host or many).

FG²U's b directions are independent, so the estimate ``(1/b) Σ_i (∇L·v_i) v_i`` splits into ``d`` equal
shares, one per device along a mesh axis, each averaged locally and then averaged across devices
(``lax.pmean``). The directions are sampled once from the global key, exactly as on one device, and
sharded along their leading axis: the result equals the single-device estimate for the same key, and
different devices necessarily work on different directions.

Multi-host: call ``jax.distributed.initialize()`` on every process first, then build the mesh over
``jax.devices()`` (all hosts' devices); the same program runs unchanged. See docs/distributed.md.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax import lax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from fg2u.estimator import Aux
from fg2u.estimators import Estimator

from .directions import sample_directions
from .forward import FG2U, FG2U_ZO

PyTree = Any

__all__ = ["DirectionParallel", "direction_mesh"]


def direction_mesh(num_devices: int | None = None, axis_name: str = "directions") -> Mesh:
    """A 1-D mesh over the first ``num_devices`` devices (default: all, on every host)."""
    devices = jax.devices()
    if num_devices is not None:
        if not 1 <= num_devices <= len(devices):
            raise ValueError(
                f"num_devices={num_devices} but JAX sees {len(devices)} device(s); on CPU, simulate more with "
                "XLA_FLAGS=--xla_force_host_platform_device_count=N set before JAX is imported"
            )
        devices = devices[:num_devices]
    return jax.make_mesh((len(devices),), (axis_name,), axis_types=(AxisType.Auto,), devices=devices)


@dataclasses.dataclass(frozen=True)
class DirectionParallel(Estimator):
    """Runs an [`FG2U`][fg2u.jax.FG2U] or [`FG2U_ZO`][fg2u.jax.FG2U_ZO] estimator with its directions spread over a mesh
    axis.

    Args:
      estimator: the FG²U / FG²U-ZO estimator; its ``num_directions`` (b) must be divisible by the size of
        the mesh axis, each device handling ``b / d`` directions (chunked by the estimator's
        ``chunk_size``).
      mesh: a ``jax.sharding.Mesh`` (e.g. [`direction_mesh`][fg2u.jax.direction_mesh]).
      axis_name: the mesh axis the directions are spread over.

    ``DirectionParallel(FG2U(32), mesh)(problem, phi, key)`` returns the same ``(grad, Aux)`` as
    ``FG2U(32)(problem, phi, key)`` (up to float rounding of the two-level mean), computed on ``d`` devices.
    """

    estimator: FG2U | FG2U_ZO
    mesh: Mesh
    axis_name: str = "directions"

    def __post_init__(self) -> None:
        if not isinstance(self.estimator, (FG2U, FG2U_ZO)):
            raise TypeError(
                "DirectionParallel spreads random directions over devices, so it wraps FG2U or FG2U_ZO; "
                f"got {type(self.estimator).__name__}"
            )
        if not isinstance(self.mesh, Mesh):
            raise TypeError(f"mesh must be a jax.sharding.Mesh (see fg2u.jax.direction_mesh), got {self.mesh!r}")
        if self.axis_name not in self.mesh.axis_names:
            raise ValueError(f"axis_name {self.axis_name!r} is not an axis of the mesh {self.mesh.axis_names}")
        devices = self.mesh.shape[self.axis_name]
        if self.estimator.num_directions % devices:
            raise ValueError(
                f"num_directions={self.estimator.num_directions} is not divisible by the {devices} devices of "
                f"mesh axis {self.axis_name!r}; choose a multiple of {devices}"
            )

    @property
    def display_name(self) -> str:
        """Records name it like the wrapped estimator (same estimate); ``settings()`` adds the device count."""
        return self.estimator.display_name

    def settings(self) -> dict[str, Any]:
        return {**self.estimator.settings(), "direction_parallel_devices": self.num_devices}

    @property
    def num_devices(self) -> int:
        return self.mesh.shape[self.axis_name]

    def __call__(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        directions = sample_directions(self.estimator.distribution, key, self.estimator.num_directions, like=phi)
        return self.with_directions(problem, phi, directions)

    def with_directions(self, problem: Any, phi: PyTree, directions: PyTree) -> tuple[PyTree, Aux]:
        """The estimate for explicit directions (leading axis b, sharded over the mesh axis)."""
        return self._sharded(problem, phi, directions, reduce=True)

    def per_device(self, problem: Any, phi: PyTree, key: Any) -> tuple[PyTree, Aux]:
        """Each device's own estimate, stacked on a leading axis of length d (before the mean).

        Their mean is ``self(problem, phi, key)``; their spread shows the variance of a ``b/d``-direction
        estimate.
        """
        directions = sample_directions(self.estimator.distribution, key, self.estimator.num_directions, like=phi)
        return self._sharded(problem, phi, directions, reduce=False)

    def _sharded(self, problem: Any, phi: PyTree, directions: PyTree, reduce: bool) -> tuple[PyTree, Aux]:
        leading = {x.shape[0] for x in jax.tree_util.tree_leaves(directions)}
        if len(leading) != 1 or leading.pop() % self.num_devices:
            raise ValueError(
                f"directions need one leading axis b divisible by the {self.num_devices} devices; "
                f"got leaf shapes {[x.shape for x in jax.tree_util.tree_leaves(directions)]}"
            )
        axis = self.axis_name

        def local(problem: Any, phi: PyTree, local_directions: PyTree) -> tuple[PyTree, Aux]:
            estimate = self.estimator.with_directions(problem, phi, local_directions)
            if reduce:
                return lax.pmean(estimate, axis)
            return jax.tree_util.tree_map(lambda x: x[None], estimate)

        replicated, sharded = PartitionSpec(), PartitionSpec(axis)
        if self.mesh.axis_types[self.mesh.axis_names.index(axis)] == AxisType.Explicit:
            # Explicit-sharding meshes want inputs already laid out as the in_specs say.
            directions = jax.sharding.reshard(directions, NamedSharding(self.mesh, sharded))
            problem, phi = jax.sharding.reshard((problem, phi), NamedSharding(self.mesh, replicated))
        return jax.shard_map(
            local,
            mesh=self.mesh,
            in_specs=(replicated, replicated, sharded),
            out_specs=replicated if reduce else sharded,
            check_vma=False,  # the estimators scan with replicated initial carries; pmean makes the output replicated
        )(problem, phi, directions)
