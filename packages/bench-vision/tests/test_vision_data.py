"""Loaders on small files written here in the real formats; missing-data errors; the embedded digits."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from fg2u_bench_vision import data as vd

SHARED_MNIST = Path("/work/shared/data/mnist")


def _write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    codes = {np.dtype("uint8"): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def _mnist_files(folder: Path, n_train: int, n_test: int, gz: bool = True, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, name in vd.MNIST_FILES.items():
        _write_idx(folder / name, arrays[key], gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_the_four_idx_files(tmp_path: Path, gz: bool) -> None:
    arrays = _mnist_files(tmp_path / "mnist", 30, 20, gz=gz)
    ds = vd.load_mnist(tmp_path)  # finds DIR/mnist/
    assert ds.name == "mnist" and ds.num_classes == 10
    assert ds.x_train.shape == (30, 28, 28, 1) and ds.x_test.shape == (20, 28, 28, 1)
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["train_images"].astype(np.float32) / 255.0)
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 3) + b"abc")
    with pytest.raises(ValueError, match="magic"):
        vd.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"abc")
    with pytest.raises(ValueError, match="5"):
        vd.read_idx(short)


def test_mnist_test_resplit_is_balanced_disjoint_and_seeded(tmp_path: Path) -> None:
    arrays = _mnist_files(tmp_path, 10, 300)
    ds = vd.load_mnist_test_resplit(tmp_path, split_seed=3, test_per_class=7)
    assert ds.name == "mnist-test-resplit" and "VARIANT" in ds.note
    assert ds.x_test.shape[0] == 70 and ds.x_train.shape[0] == 230
    np.testing.assert_array_equal(np.bincount(ds.y_test, minlength=10), np.full(10, 7))
    # every test image is one of the originals and train/test partition them
    flat = {img.tobytes() for img in arrays["test_images"]}
    got = [(np.round(x[..., 0] * 255).astype(np.uint8)).tobytes() for x in np.concatenate([ds.x_train, ds.x_test])]
    assert set(got) == flat and len(got) == 300
    again = vd.load_mnist_test_resplit(tmp_path, split_seed=3, test_per_class=7)
    np.testing.assert_array_equal(again.x_test, ds.x_test)
    other = vd.load_mnist_test_resplit(tmp_path, split_seed=4, test_per_class=7)
    assert not np.array_equal(other.x_test, ds.x_test)


def _cifar_batch(n: int, num_classes: int, label_key: bytes, seed: int) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    flat = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # the official layout: R plane, G plane, B plane
    labels = list(rng.integers(0, num_classes, n))
    return {b"data": flat, label_key: labels, b"batch_label": b"x"}, images


def test_cifar10_pickles(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    originals = []
    for i, name in enumerate((*vd.CIFAR10_TRAIN, vd.CIFAR10_TEST)):
        batch, images = _cifar_batch(4, 10, b"labels", i)
        originals.append((images, batch[b"labels"]))
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f)
    ds = vd.load_cifar10(tmp_path)
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_test.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(np.round(ds.x_train[:4] * 255).astype(np.uint8), originals[0][0])
    np.testing.assert_array_equal(ds.y_test, originals[-1][1])


def test_cifar100_pickles_use_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for i, name in enumerate(("train", "test")):
        batch, _ = _cifar_batch(6, 100, b"fine_labels", i)
        batch[b"coarse_labels"] = [0] * 6
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f)
    ds = vd.load_cifar100(folder)  # the folder itself works too
    assert ds.num_classes == 100 and ds.x_train.shape == (6, 32, 32, 3)
    assert ds.y_train.max() > 0


def test_missing_data_errors_name_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(vd.DATA_ENV, raising=False)
    with pytest.raises(vd.DataNotFoundError, match="--data-dir"):
        vd.load_dataset("mnist")
    with pytest.raises(vd.DataNotFoundError, match="t10k-images-idx3-ubyte"):
        vd.load_dataset("mnist", tmp_path)
    with pytest.raises(vd.DataNotFoundError, match="data_batch_1"):
        vd.load_dataset("cifar10", tmp_path)
    with pytest.raises(vd.DataNotFoundError, match="does not exist"):
        vd.load_dataset("cifar100", tmp_path / "nope")
    monkeypatch.setenv(vd.DATA_ENV, str(tmp_path))
    with pytest.raises(vd.DataNotFoundError, match=str(tmp_path)):
        vd.load_dataset("mnist-test-resplit")
    with pytest.raises(ValueError, match="unknown data set"):
        vd.load_dataset("imagenet")


def test_tfds_source_without_the_package_says_how_to_install(tmp_path: Path) -> None:
    try:
        import tensorflow_datasets  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="fg2u-bench-vision\\[tfds\\]"):
            vd.load_dataset("mnist", tmp_path, source="tfds")
    else:
        with pytest.raises(vd.DataNotFoundError):
            vd.load_dataset("mnist", tmp_path, source="tfds")


def test_digits_default() -> None:
    ds = vd.load_digits()
    assert ds.image_shape == (8, 8, 1) and ds.x_train.shape[0] + ds.x_test.shape[0] == 1797
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    counts = np.bincount(ds.y_test, minlength=10)
    assert (counts == counts[0]).all()


@pytest.mark.skipif(not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file(), reason="shared MNIST files absent")
def test_real_mnist_test_resplit() -> None:
    ds = vd.load_dataset("mnist-test-resplit", SHARED_MNIST)
    assert ds.x_train.shape == (8000, 28, 28, 1) and ds.x_test.shape == (2000, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(ds.y_test), np.full(10, 200))
    assert 0.1 < ds.x_train.mean() < 0.2  # MNIST's mean pixel is ≈ 0.13
