"""ConvNet shapes, instance-norm statistics, the matmul convolution against flax's nn.Conv, losses."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fg2u_bench_vision.model import (
    Conv3x3,
    ConvNet,
    InstanceNorm,
    cross_entropy,
    default_depth,
    param_shapes,
    sample_params,
)


@pytest.mark.parametrize("shape,depth,classes", [((8, 8, 1), 2, 10), ((32, 32, 3), 3, 100), ((8, 8, 1), 4, 10)])
def test_output_shapes(shape, depth, classes) -> None:
    model = ConvNet(num_classes=classes, width=4, depth=depth)
    params = sample_params(model, shape, np.random.default_rng(0))
    out = jax.jit(model.apply)({"params": params}, jnp.ones((5, *shape)))
    assert out.shape == (5, classes)
    # pooling stops at 1×1, so the head sees width × (H / 2^min(depth, log2 H))² features
    side = shape[0] // 2 ** min(depth, int(np.log2(shape[0])))
    assert params["head"]["kernel"].shape == (4 * side * side, classes)


def test_host_sampled_parameters_follow_flax_initialisers() -> None:
    model = ConvNet(10, width=64, depth=2)
    params = sample_params(model, (8, 8, 1), np.random.default_rng(0), num=3)
    shapes = param_shapes(model, (8, 8, 1))
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(shapes)
    for (path, p), s in zip(jax.tree_util.tree_flatten_with_path(params)[0], jax.tree_util.tree_leaves(shapes)):
        assert p.shape == (3, *s.shape) and p.dtype == np.float32, path
    k = params["conv1"]["kernel"]  # 3·3·64 fan-in, 3·36,864 samples: LeCun normal has std 1/√fan_in
    assert np.abs(k).max() <= 2.0 / np.sqrt(576) / 0.87962566 + 1e-6  # truncated at 2σ of the base normal
    assert k.std() == pytest.approx(1 / np.sqrt(576), rel=0.02)  # sampling error of the std ≈ 0.3 %
    assert (params["norm0"]["scale"] == 1).all() and (params["head"]["bias"] == 0).all()
    assert not np.allclose(params["conv0"]["kernel"][0], params["conv0"]["kernel"][1])


def test_default_depth() -> None:
    assert default_depth((8, 8, 1)) == 2 and default_depth((28, 28, 1)) == 3 and default_depth((32, 32, 3)) == 3


def test_instance_norm_statistics() -> None:
    x = (3.0 + 2.0 * np.random.default_rng(1).standard_normal((4, 6, 6, 5))).astype(np.float32)
    norm = InstanceNorm()
    params = {"params": {"scale": jnp.ones(5), "bias": jnp.zeros(5)}}
    y = jax.jit(norm.apply)(params, x)
    mean = y.mean(axis=(1, 2))
    var = y.var(axis=(1, 2))
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)
    # var(y) = σ² / (σ² + eps) exactly, with σ² the per-(sample, channel) variance of x
    sigma2 = np.asarray(x).var(axis=(1, 2))
    np.testing.assert_allclose(var, sigma2 / (sigma2 + 1e-5), rtol=1e-4)
    scaled = jax.jit(norm.apply)({"params": {"scale": jnp.full(5, 2.0), "bias": jnp.arange(5.0)}}, x)
    np.testing.assert_allclose(scaled.mean(axis=(1, 2)), np.broadcast_to(np.arange(5.0), (4, 5)), atol=1e-4)


def test_conv3x3_matches_flax_conv() -> None:
    x = np.random.default_rng(2).standard_normal((3, 7, 5, 4)).astype(np.float32)
    conv = Conv3x3(6)
    kernel = np.random.default_rng(3).standard_normal((3, 3, 4, 6)).astype(np.float32)
    params = {"params": {"kernel": kernel, "bias": jnp.linspace(-1, 1, 6)}}
    ref = jax.jit(nn.Conv(6, (3, 3), padding="SAME").apply)(params, x)
    np.testing.assert_allclose(jax.jit(conv.apply)(params, x), ref, rtol=1e-5, atol=1e-4)
    a = ConvNet(10, width=4, depth=2, conv_impl="matmul")
    b = ConvNet(10, width=4, depth=2, conv_impl="xla")
    p = sample_params(a, (8, 8, 1), np.random.default_rng(4))
    img = np.random.default_rng(5).random((2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(
        jax.jit(a.apply)({"params": p}, img), jax.jit(b.apply)({"params": p}, img), rtol=1e-4, atol=1e-5
    )


def test_norm_order_flag_changes_the_function() -> None:
    img = np.random.default_rng(5).random((2, 8, 8, 1)).astype(np.float32)
    before = ConvNet(10, width=4, depth=1, norm_before_relu=True)
    after = ConvNet(10, width=4, depth=1, norm_before_relu=False)
    p = sample_params(before, (8, 8, 1), np.random.default_rng(0))
    assert not np.allclose(jax.jit(before.apply)({"params": p}, img), jax.jit(after.apply)({"params": p}, img))
    # relu→norm: each block's output is normalised, so it has zero mean per channel (norm→relu does not)
    capture = jax.jit(lambda v, x: after.apply(v, x, capture_intermediates=True, mutable=["intermediates"])[1])
    feats = capture({"params": p}, img)
    y = feats["intermediates"]["norm0"]["__call__"][0]
    np.testing.assert_allclose(np.asarray(y).mean(axis=(1, 2)), 0.0, atol=1e-5)


def test_cross_entropy_int_and_one_hot_agree() -> None:
    logits = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 0, 1, 2])
    ce = jax.jit(cross_entropy)(logits, labels)
    np.testing.assert_allclose(ce, jax.jit(cross_entropy)(logits, np.eye(4, dtype=np.float32)[labels]), rtol=1e-6)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    manual = -np.mean(logp[np.arange(7), labels])
    np.testing.assert_allclose(ce, manual, rtol=1e-6)


def test_bad_input_shape() -> None:
    with pytest.raises(ValueError, match="B, H, W, C"):
        ConvNet(10, width=4).init(jax.random.PRNGKey(0), jnp.ones((8, 8, 1)))
