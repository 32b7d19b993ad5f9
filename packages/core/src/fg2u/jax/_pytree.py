"""Pytree helpers: flattening to one vector, structure / shape / dtype checks with clear messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from fg2u.directions import check_direction_shapes
from fg2u.problem import promoted_by_phi_message

PyTree = Any

__all__ = [
    "ravel",
    "check_float_tree",
    "check_same_structure",
    "check_directions",
    "split_float",
    "cast_like",
]


def _path(path: tuple) -> str:
    return jax.tree_util.keystr(path) or "<root>"


def ravel(tree: PyTree) -> tuple[jax.Array, Callable[[jax.Array], PyTree]]:
    """``tree -> (flat, unravel)``: all leaves concatenated into one 1-D vector of size ``N``.

    ``unravel(flat)`` rebuilds the pytree (casting each leaf back to its own dtype).
    """
    return ravel_pytree(tree)


def _list_hint(tree: PyTree, name: str) -> str:
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return (
            f" ({name} is a Python {type(tree).__name__}: for one vector pass jnp.asarray({name}, dtype=jnp.float32))"
        )
    return ""


def check_float_tree(tree: PyTree, name: str = "phi") -> None:
    """Raises ``TypeError`` naming the first leaf of ``tree`` that is not a floating-point array.

    Meta parameters must be floating point: a meta-gradient of an integer or boolean leaf is undefined.
    """
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    if not leaves:
        raise ValueError(f"{name} has no array leaves; pass the meta parameters as a pytree of float arrays")
    for path, leaf in leaves:
        if type(leaf).__module__.split(".")[0] == "torch":
            raise TypeError(
                f"{name}{_path(path)} is a torch.Tensor, but fg2u.jax estimators take JAX or NumPy arrays: "
                f"convert it with jnp.asarray(x.detach().cpu().numpy()), or use the PyTorch estimators of "
                "fg2u.torch (same names and settings)"
            )
        dtype = getattr(leaf, "dtype", None)
        if dtype is None:
            # Python numbers are rejected as torch does: a list φ = [1.0, 2.0] is a pytree of two scalars,
            # not a vector, and would fail later inside the user's step (e.g. in phi @ x).
            raise TypeError(
                f"{name}{_path(path)} must be a floating-point array, got {type(leaf).__name__}: {leaf!r}; "
                f"convert it with jnp.asarray(x, dtype=jnp.float32){_list_hint(tree, name)}"
            )
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{name}{_path(path)} has dtype {dtype}, but meta parameters must be floating point "
                "(a meta-gradient of an integer/boolean leaf is undefined); cast it with .astype(jnp.float32) "
                "or close over it instead of passing it in phi"
            )


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", ())
    dtype = getattr(x, "dtype", type(x).__name__)
    return f"shape {tuple(shape)} dtype {dtype}"


def check_same_structure(
    got: PyTree, expected: PyTree, got_name: str, expected_name: str, *, check_dtype: bool = True, phi: PyTree = None
) -> None:
    """Raises ``TypeError`` when ``got`` and ``expected`` differ in pytree structure, leaf shapes or dtypes.

    With ``phi`` given (a step's output against its input), a dtype mismatch caused by φ's dtype (a float64 φ
    under ``jax_enable_x64`` promoting a float32 state) says so and how to fix it."""
    got_def: Any = jax.tree_util.tree_structure(got)
    exp_def: Any = jax.tree_util.tree_structure(expected)
    if got_def != exp_def:
        raise TypeError(
            f"{got_name} has pytree structure\n  {got_def}\nbut {expected_name} has\n  {exp_def}\n"
            f"they must match exactly (same containers, keys and number of leaves)"
        )
    got_leaves = jax.tree_util.tree_flatten_with_path(got)[0]
    for (path, g), e in zip(got_leaves, jax.tree_util.tree_leaves(expected)):
        gs, es = tuple(jnp.shape(g)), tuple(jnp.shape(e))
        if gs != es:
            raise TypeError(f"{got_name}{_path(path)} has shape {gs} but {expected_name}{_path(path)} has shape {es}")
        if check_dtype:
            gd, ed = jnp.result_type(g), jnp.result_type(e)
            if gd != ed:
                phi_dtypes = {str(jnp.result_type(x)) for x in jax.tree_util.tree_leaves(phi)}
                where = f"{got_name}{_path(path)}"
                raise TypeError(
                    promoted_by_phi_message(where, str(gd), str(ed), phi_dtypes, "phi.astype(jnp.{dtype})")
                    or f"{where} has dtype {gd} but {expected_name}{_path(path)} has dtype {ed}; "
                    "cast it so the dtypes agree"
                )


def check_directions(directions: PyTree, phi: PyTree) -> int:
    """Checks that ``directions`` is a pytree like ``phi`` whose leaves have one extra leading axis ``b``.

    Returns ``b`` (the number of directions).
    """
    d_def: Any = jax.tree_util.tree_structure(directions)
    p_def: Any = jax.tree_util.tree_structure(phi)
    if d_def != p_def:
        raise TypeError(
            f"directions have pytree structure\n  {d_def}\nbut phi has\n  {p_def}\n"
            "directions must be a pytree like phi with a leading axis b on every leaf"
        )
    d_leaves = jax.tree_util.tree_flatten_with_path(directions)[0]
    shapes = zip(d_leaves, jax.tree_util.tree_leaves(phi))
    return check_direction_shapes((_path(path), jnp.shape(d), jnp.shape(p)) for (path, d), p in shapes)


def split_float(tree: PyTree) -> tuple[list, Callable[[list], PyTree]]:
    """Separates the floating-point leaves of ``tree`` (differentiable) from the others (e.g. step counters).

    Returns ``(float_leaves, rebuild)`` where ``rebuild(new_float_leaves)`` puts the non-float leaves back.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    is_float = [jnp.issubdtype(jnp.result_type(x), jnp.inexact) for x in leaves]
    float_leaves = [x for x, f in zip(leaves, is_float) if f]

    def rebuild(new_float_leaves: list) -> PyTree:
        it = iter(new_float_leaves)
        return jax.tree_util.tree_unflatten(treedef, [next(it) if f else x for x, f in zip(leaves, is_float)])

    return float_leaves, rebuild


def cast_like(tree: PyTree, like: PyTree) -> PyTree:
    """Casts each leaf of ``tree`` to the dtype of the matching leaf of ``like``."""
    return jax.tree_util.tree_map(lambda x, y: jnp.asarray(x, dtype=jnp.result_type(y)), tree, like)
