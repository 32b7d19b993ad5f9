"""ConvNet-D, the standard dataset-condensation network, in flax.

``depth`` × [conv 3×3 'same' (``width`` channels) → instance norm (affine) → ReLU → 2×2 average pool],
flatten, linear head. ``norm_before_relu=False`` gives the (FG)²U paper code's order
(conv → ReLU → instance norm); results record which order was used.

Pooling is skipped once the feature map is 1×1, so small images (8×8 digits) work with any depth;
``default_depth`` picks 3 for images ≥ 16 pixels wide and 2 below (8×8 → 4×4 → 2×2).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "InstanceNorm",
    "Conv3x3",
    "ConvNet",
    "default_depth",
    "init_params",
    "param_shapes",
    "sample_params",
    "cross_entropy",
    "accuracy",
]


class InstanceNorm(nn.Module):
    """Per-sample, per-channel normalisation over the spatial axes, with learned scale and offset.

    ``x: (B, H, W, C) -> (B, H, W, C)``, ``y = scale_c · (x − μ_{b,c}) / sqrt(σ²_{b,c} + eps) + bias_c``
    with μ, σ² the mean and (biased) variance over H, W.
    """

    eps: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (channels,), x.dtype)
        bias = self.param("bias", nn.initializers.zeros, (channels,), x.dtype)
        mean = jnp.mean(x, axis=(1, 2), keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias


class Conv3x3(nn.Module):
    """3×3 'same' convolution (cross-correlation, like ``nn.Conv``) written as 9 shifted views and one matmul.

    ``x: (B, H, W, C_in) -> (B, H, W, features)``; parameters ``kernel (3, 3, C_in, features)`` (LeCun-normal,
    as ``nn.Conv``) and ``bias (features,)``. Numerically the same map as ``nn.Conv(features, (3, 3),
    padding="SAME")``; on CPU its first and second derivatives (needed by every meta-gradient estimator)
    are plain matmuls, much faster than XLA's small grouped convolutions.
    """

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c_in = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, c_in, self.features), x.dtype)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), x.dtype)
        h, w = x.shape[1], x.shape[2]
        xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = jnp.concatenate([xp[:, i : i + h, j : j + w, :] for i in range(3) for j in range(3)], axis=-1)
        return patches @ kernel.reshape(9 * c_in, self.features) + bias


class ConvNet(nn.Module):
    """``(B, H, W, C) -> (B, num_classes)`` logits.

    Attributes:
      num_classes: output classes.
      width: channels of every conv layer (paper: 128).
      depth: number of conv blocks (paper: 3).
      norm_before_relu: True — conv → norm → ReLU (usual condensation ConvNet); False — conv → ReLU →
        norm (the (FG)²U paper's code).
      conv_impl: ``"matmul"`` (:class:`Conv3x3`, fast on CPU) or ``"xla"`` (``nn.Conv``); same parameters
        and the same function.
    """

    num_classes: int
    width: int = 128
    depth: int = 3
    norm_before_relu: bool = True
    conv_impl: str = "matmul"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.ndim != 4:
            raise ValueError(f"ConvNet expects images (B, H, W, C), got shape {x.shape}")
        for i in range(self.depth):
            if self.conv_impl == "matmul":
                x = Conv3x3(self.width, name=f"conv{i}")(x)
            elif self.conv_impl == "xla":
                x = nn.Conv(self.width, (3, 3), padding="SAME", name=f"conv{i}")(x)
            else:
                raise ValueError(f"conv_impl must be 'matmul' or 'xla', got {self.conv_impl!r}")
            if self.norm_before_relu:
                x = nn.relu(InstanceNorm(name=f"norm{i}")(x))
            else:
                x = InstanceNorm(name=f"norm{i}")(nn.relu(x))
            if x.shape[1] >= 2 and x.shape[2] >= 2:
                x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes, name="head")(x)


def default_depth(image_shape: tuple[int, ...]) -> int:
    """3 conv blocks for images at least 16 pixels on each side, 2 for smaller ones (8×8 digits)."""
    return 3 if min(image_shape[0], image_shape[1]) >= 16 else 2


def init_params(model: ConvNet, key: jax.Array, image_shape: tuple[int, int, int]) -> Any:
    """Fresh parameters for images of ``image_shape = (H, W, C)`` (flax default initialisers)."""
    return _jitted_init(model, tuple(int(s) for s in image_shape))(key)


@functools.cache
def _jitted_init(model: ConvNet, image_shape: tuple[int, ...]) -> Any:
    # one compiled program instead of one per primitive when called eagerly; inlined under an outer jit
    return jax.jit(lambda key: model.init(key, jnp.zeros((1, *image_shape), jnp.float32))["params"])


_TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def param_shapes(model: ConvNet, image_shape: tuple[int, int, int]) -> Any:
    """The parameter pytree of ``model`` as ``jax.ShapeDtypeStruct`` leaves (traced only, nothing compiled)."""
    return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, *image_shape), jnp.float32)))[
        "params"
    ]


def sample_params(
    model: ConvNet, image_shape: tuple[int, int, int], rng: np.random.Generator, num: int | None = None
) -> Any:
    """Fresh parameters drawn on the host with flax's default distributions (no XLA compilation).

    Kernels (conv and head): LeCun normal, i.e. a normal truncated at ±2σ scaled to variance
    1/fan_in (fan_in = product of all but the last axis); biases 0; instance-norm scales 1.
    ``num``: if given, a stack of ``num`` independent draws (leading axis ``num``). Leaves are float32
    numpy arrays, pass them straight to jitted code.
    """
    shapes = param_shapes(model, tuple(image_shape))
    lead = () if num is None else (int(num),)

    def draw(path: tuple, leaf: Any) -> np.ndarray:
        name = getattr(path[-1], "key", str(path[-1]))
        shape = lead + tuple(leaf.shape)
        if name == "kernel":
            fan_in = int(np.prod(leaf.shape[:-1]))
            z = rng.standard_normal(shape)
            bad = np.abs(z) > 2.0
            while bad.any():
                z[bad] = rng.standard_normal(int(bad.sum()))
                bad = np.abs(z) > 2.0
            return (z * (np.sqrt(1.0 / fan_in) / _TRUNC_STD)).astype(np.float32)
        if name == "scale":
            return np.ones(shape, np.float32)
        if name == "bias":
            return np.zeros(shape, np.float32)
        raise ValueError(f"sample_params: no initialiser for parameter {jax.tree_util.keystr(path)}")

    return jax.tree_util.tree_map_with_path(draw, shapes)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy. ``labels``: int ``(B,)`` or soft/one-hot ``(B, K)``."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    if labels.ndim == logits.ndim:
        return -jnp.mean(jnp.sum(labels * logp, axis=-1))
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of ``argmax(logits) == labels`` (int labels ``(B,)``)."""
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)
