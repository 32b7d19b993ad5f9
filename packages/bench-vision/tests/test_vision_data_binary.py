"""CIFAR-10 binary version (``*.bin`` / ``*.bin.gz``) and the first-1,000-test-images variant, on small files
written here in the official format; the real shared files when they are present (never required)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from fg2u_bench_vision import data as vd

# The project's shared data folder (../shared/data from the repository root) or $FG2U_SHARED_DATA; the
# tests that read it are skipped on a fresh clone.
SHARED = Path(os.environ.get("FG2U_SHARED_DATA", Path(__file__).resolve().parents[3] / ".." / "shared" / "data"))


def _records(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """n official records: label byte, then R, G, B planes of 32 × 32 row-major bytes."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) + seed) % 10
    planes = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    raw = b"".join(bytes([int(labels[i])]) + planes[i].tobytes() for i in range(n))
    return raw, labels, planes


def _write(path: Path, raw: bytes, gz: bool) -> None:
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def _write_batches(folder: Path, gz: bool, test_name: str = "test_batch", n: int = 4) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i in range(1, 6):
        raw, y, p = _records(n, seed=i)
        _write(folder / f"data_batch_{i}.bin", raw, gz)
        out[i] = (y, p)
    raw, y, p = _records(3, seed=99)
    _write(folder / f"{test_name}.bin", raw, gz)
    out["test"] = (y, p)
    return out


def test_read_cifar10_bin_decodes_label_and_planes(tmp_path: Path) -> None:
    raw, labels, planes = _records(5, seed=1)
    path = tmp_path / "b.bin"
    path.write_bytes(raw)
    x, y = vd.read_cifar10_bin(path)
    assert x.shape == (5, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(y, labels)
    # pixel (row 3, column 7) of image 2: red, green, blue bytes from the three planes
    np.testing.assert_array_equal(np.round(x[2, 3, 7] * 255).astype(np.uint8), planes[2, :, 3, 7])


@pytest.mark.parametrize("gz", [True, False])
def test_binary_version_with_full_test_batch_is_plain_cifar10(tmp_path: Path, gz: bool) -> None:
    written = _write_batches(tmp_path / "cifar-10-batches-bin", gz)
    ds = vd.load_cifar10(tmp_path)
    assert ds.name == "cifar10" and "binary" in ds.note and ds.num_classes == 10
    assert ds.x_train.shape == (20, 32, 32, 3) and ds.x_test.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(ds.y_train, np.concatenate([written[i][0] for i in range(1, 6)]))
    np.testing.assert_array_equal(np.round(ds.x_test * 255).astype(np.uint8).transpose(0, 3, 1, 2), written["test"][1])


def test_first_1000_test_images_are_labelled_as_the_variant(tmp_path: Path) -> None:
    _write_batches(tmp_path, gz=True, test_name="test_batch_first1000")  # flat folder, like ../shared/data/cifar10
    ds = vd.load_cifar10(tmp_path)
    assert ds.name == vd.CIFAR10_FIRST1000_NAME == "cifar10 (official train, first 1,000 test images)"
    assert "VARIANT" in ds.note and ds.x_test.shape[0] == 3
    # a full test batch next to it wins: standard CIFAR-10
    raw, _, _ = _records(2, seed=5)
    (tmp_path / "test_batch.bin").write_bytes(raw)
    assert vd.load_cifar10(tmp_path).name == "cifar10"


def test_pickles_are_still_preferred_and_errors_name_the_files(tmp_path: Path) -> None:
    with pytest.raises(vd.DataNotFoundError, match=r"data_batch_1\.bin"):
        vd.load_cifar10(tmp_path)
    folder = tmp_path / "cifar10"
    _write_batches(folder, gz=True)
    (folder / "data_batch_3.bin.gz").unlink()
    with pytest.raises(vd.DataNotFoundError, match="data_batch_3"):
        vd.load_cifar10(tmp_path)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="whole number"):
        vd.read_cifar10_bin(bad)
    raw, _, _ = _records(1, seed=0)
    bad.write_bytes(b"\x0c" + raw[1:])
    with pytest.raises(ValueError, match="outside 0"):
        vd.read_cifar10_bin(bad)


@pytest.mark.skipif(not (SHARED / "cifar10" / "test_batch_first1000.bin.gz").is_file(), reason="shared data absent")
def test_shared_first1000_file_has_the_documented_class_counts() -> None:
    x, y = vd.read_cifar10_bin(SHARED / "cifar10" / "test_batch_first1000.bin.gz")
    assert x.shape == (1000, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(y, minlength=10), [103, 89, 100, 103, 90, 86, 112, 102, 106, 109])


@pytest.mark.skipif(not (SHARED / "mnist" / "train-images-idx3-ubyte.gz").is_file(), reason="shared data absent")
def test_shared_full_mnist_loads_as_standard_mnist() -> None:
    ds = vd.load_dataset("mnist", SHARED / "mnist")
    assert ds.name == "mnist" and ds.x_train.shape == (60_000, 28, 28, 1) and ds.x_test.shape == (10_000, 28, 28, 1)
    assert np.bincount(ds.y_test, minlength=10).sum() == 10_000
