"""Image classification data sets for dataset condensation, read from local files only.

Every loader returns a :class:`VisionData` with images ``(N, H, W, C)`` float32 in ``[0, 1]`` (no
normalisation, no ZCA: the paper's setting) and integer labels ``(N,)``. Nothing is downloaded.

Sources
-------
* ``digits`` — scikit-learn's 8×8 handwritten digits (1,797 real images shipped inside scikit-learn),
  the embedded default. Pixels 0…16 are divided by 16. There is no official split; a fixed,
  class-balanced, seeded split holds out 25 % for testing (``split_seed``).
* ``mnist`` — the standard four idx files (``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
  ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``).
* ``mnist-test-resplit`` — a clearly labelled *variant* that needs only the two ``t10k`` files: the
  10,000 real test images are re-split, seeded and class-balanced, into 8,000 to condense from and
  2,000 held out. Results on it are **not** standard-MNIST results.
* ``cifar10`` / ``cifar100`` — the official "python version" pickles (``cifar-10-batches-py/`` with
  ``data_batch_1`` … ``data_batch_5`` and ``test_batch``; ``cifar-100-python/`` with ``train`` and ``test``).
* ``cifar10`` also from the official "binary version" (``cifar-10-batches-bin/`` with
  ``data_batch_1.bin`` … ``data_batch_5.bin`` and ``test_batch.bin``, each optionally gzipped as
  ``*.bin.gz``): records of 1 label byte + 3,072 pixel bytes (1,024 red, 1,024 green, 1,024 blue,
  row-major 32 × 32). When the full test batch is absent but ``test_batch_first1000.bin[.gz]`` (the first
  1,000 official test images) is present, the result is the VARIANT named
  :data:`CIFAR10_FIRST1000_NAME`, never plain ``cifar10``.
* any of mnist/cifar10/cifar100 through tensorflow-datasets (``source="tfds"``) when the data set is
  already prepared in a local ``data_dir`` (``download=False``; tensorflow-datasets is imported lazily).

The data folder comes from the ``data_dir`` argument (CLI ``--data-dir``) or the environment variable
``FG2U_VISION_DATA``; a missing folder or file raises :class:`DataNotFoundError` naming the files and
where to put them.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "DATA_ENV",
    "DATASETS",
    "VisionData",
    "DataNotFoundError",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "load_mnist_test_resplit",
    "load_cifar10",
    "load_cifar100",
    "load_tfds",
    "read_idx",
    "read_cifar10_bin",
    "CIFAR10_FIRST1000_NAME",
    "balanced_split",
    "resolve_data_dir",
    "MNIST_FILES",
]

DATA_ENV = "FG2U_VISION_DATA"
DATASETS = ("digits", "mnist", "mnist-test-resplit", "cifar10", "cifar100")
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR10_BIN_FOLDER = "cifar-10-batches-bin"
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32
CIFAR10_TEST_FIRST1000 = "test_batch_first1000"
#: Data-set name of CIFAR-10 with the official training set but only the first 1,000 official test images.
CIFAR10_FIRST1000_NAME = "cifar10 (official train, first 1,000 test images)"


class DataNotFoundError(FileNotFoundError):
    """Data files are missing; the message says which files to put where."""


@dataclasses.dataclass(frozen=True)
class VisionData:
    """A classification data set split into train (condensed from) and test (evaluation).

    Attributes:
      name: data set name as results should report it (e.g. ``"mnist-test-resplit"``).
      x_train: ``(N_train, H, W, C)`` float32 in ``[0, 1]``.
      y_train: ``(N_train,)`` int32 in ``[0, num_classes)``.
      x_test: ``(N_test, H, W, C)`` float32 in ``[0, 1]``.
      y_test: ``(N_test,)`` int32.
      num_classes: number of classes.
      note: provenance of the split (recorded with results).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    note: str = ""

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 4:
                raise ValueError(f"{self.name}: x_{split} must be (N, H, W, C), got shape {x.shape}")
            if y.shape != (x.shape[0],):
                raise ValueError(f"{self.name}: y_{split} must have shape ({x.shape[0]},), got {y.shape}")
            if y.size and (y.min() < 0 or y.max() >= self.num_classes):
                raise ValueError(f"{self.name}: y_{split} has labels outside [0, {self.num_classes})")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)``."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------- helpers


def resolve_data_dir(data_dir: str | os.PathLike | None, dataset: str) -> Path:
    """``data_dir`` if given, else ``$FG2U_VISION_DATA``; raises when neither is set or it does not exist."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
    if data_dir is None:
        raise DataNotFoundError(
            f"data set {dataset!r} needs local files, but no data folder was given: pass --data-dir DIR "
            f"(or set {DATA_ENV}=DIR). {_expected_files(dataset)}"
        )
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"data folder {str(path)!r} for {dataset!r} does not exist. {_expected_files(dataset)}")
    return path


def _expected_files(dataset: str) -> str:
    if dataset == "mnist":
        names = ", ".join(f"{n}.gz" for n in MNIST_FILES.values())
        return f"Expected the standard MNIST idx files {names} (gzipped or not) in DIR or DIR/mnist/."
    if dataset == "mnist-test-resplit":
        return (
            f"Expected {MNIST_FILES['test_images']}.gz and {MNIST_FILES['test_labels']}.gz (gzipped or not) "
            "in DIR or DIR/mnist/."
        )
    if dataset == "cifar10":
        names = ", ".join((*CIFAR10_TRAIN, CIFAR10_TEST))
        return (
            f"Expected the CIFAR-10 python pickles {names} in DIR/{CIFAR10_FOLDER}/, or the binary version "
            f"data_batch_1.bin … data_batch_5.bin and test_batch.bin (each optionally .gz; "
            f"{CIFAR10_TEST_FIRST1000}.bin[.gz] for the first-1,000-test-images variant) in "
            f"DIR/{CIFAR10_BIN_FOLDER}/, DIR/cifar10/ or directly in DIR."
        )
    if dataset == "cifar100":
        return f"Expected the CIFAR-100 python pickles train and test in DIR/{CIFAR100_FOLDER}/ (or directly in DIR)."
    return ""


def _find(folder: Path, candidates: Sequence[str], dataset: str) -> Path:
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise DataNotFoundError(
        f"{dataset}: none of {list(candidates)} found in {str(folder)!r}. {_expected_files(dataset)}"
    )


def balanced_split(labels: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded class-balanced split: ``test_per_class`` indices of every class go to test, the rest to train.

    Returns ``(train_indices, test_indices)``, each sorted.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size <= test_per_class:
            raise ValueError(f"class {c} has {idx.size} examples, cannot hold out {test_per_class}")
        idx = rng.permutation(idx)
        test.append(idx[:test_per_class])
        train.append(idx[test_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


# ------------------------------------------------------------------------------------------ digits


def load_digits(split_seed: int = 0, test_fraction: float = 0.25) -> VisionData:
    """scikit-learn's 8×8 digits, pixels scaled to [0, 1], class-balanced seeded train/test split."""
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int32)
    per_class = int(round(test_fraction * np.bincount(y).min()))
    train, test = balanced_split(y, per_class, split_seed)
    return VisionData(
        "digits",
        x[train],
        y[train],
        x[test],
        y[test],
        10,
        note=f"sklearn digits, {per_class} test images per class held out (split_seed={split_seed})",
    )


# ------------------------------------------------------------------------------------------- MNIST


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an idx file (``.gz`` or raw): big-endian magic ``0x00 0x00 dtype ndim``, dims, data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an idx file (bad magic number {raw[:4]!r})")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path}: unknown idx data type code {raw[2]:#x}")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise ValueError(f"{path}: idx header says {dims} ({expected} bytes) but the file holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _mnist_folder(data_dir: str | os.PathLike | None, dataset: str) -> Path:
    root = resolve_data_dir(data_dir, dataset)
    for folder in (root, root / "mnist", root / "MNIST" / "raw"):
        if any((folder / (MNIST_FILES["test_images"] + ext)).is_file() for ext in (".gz", "")):
            return folder
    return root


def _read_mnist_pair(folder: Path, images: str, labels: str, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    x = read_idx(_find(folder, (images + ".gz", images), dataset))
    y = read_idx(_find(folder, (labels + ".gz", labels), dataset))
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{dataset}: images {x.shape} and labels {y.shape} in {folder} do not match")
    return (x.astype(np.float32) / 255.0)[..., None], y.astype(np.int32)


def load_mnist(data_dir: str | os.PathLike | None = None) -> VisionData:
    """Standard MNIST from the four idx files in ``data_dir`` (or ``data_dir/mnist``)."""
    folder = _mnist_folder(data_dir, "mnist")
    x_tr, y_tr = _read_mnist_pair(folder, MNIST_FILES["train_images"], MNIST_FILES["train_labels"], "mnist")
    x_te, y_te = _read_mnist_pair(folder, MNIST_FILES["test_images"], MNIST_FILES["test_labels"], "mnist")
    return VisionData("mnist", x_tr, y_tr, x_te, y_te, 10, note=f"standard MNIST idx files from {folder}")


def load_mnist_test_resplit(
    data_dir: str | os.PathLike | None = None, split_seed: int = 0, test_per_class: int = 200
) -> VisionData:
    """VARIANT: the 10,000 real MNIST test images re-split (seeded, class-balanced) into train/test.

    With the defaults: 8,000 images to condense from, 2,000 (200 per class) held out. Named
    ``"mnist-test-resplit"`` so that results are never mistaken for standard MNIST.
    """
    folder = _mnist_folder(data_dir, "mnist-test-resplit")
    x, y = _read_mnist_pair(folder, MNIST_FILES["test_images"], MNIST_FILES["test_labels"], "mnist-test-resplit")
    train, test = balanced_split(y, test_per_class, split_seed)
    return VisionData(
        "mnist-test-resplit",
        x[train],
        y[train],
        x[test],
        y[test],
        10,
        note=(
            f"VARIANT, not standard MNIST: the official t10k images re-split into {train.size} train / "
            f"{test.size} test ({test_per_class} per class, split_seed={split_seed})"
        ),
    )


# ------------------------------------------------------------------------------------------- CIFAR


def _unpickle(path: Path) -> dict:
    with path.open("rb") as f:
        return pickle.load(f, encoding="bytes")


def _cifar_arrays(batch: dict, label_key: bytes, path: Path) -> tuple[np.ndarray, np.ndarray]:
    if b"data" not in batch or label_key not in batch:
        raise ValueError(
            f"{path}: not a CIFAR python pickle (keys {sorted(batch)}; expected b'data' and {label_key!r})"
        )
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' must be (N, 3072) uint8, got {data.shape}")
    x = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
    return x, np.asarray(batch[label_key], dtype=np.int32)


def _cifar_folder(data_dir: str | os.PathLike | None, dataset: str, folder_name: str) -> Path:
    root = resolve_data_dir(data_dir, dataset)
    return root / folder_name if (root / folder_name).is_dir() else root


def read_cifar10_bin(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 binary batch (``.bin`` or ``.bin.gz``) → ``(x (n, 32, 32, 3) float32 in [0, 1], y (n,) int32)``.

    Format: n records of 3,073 bytes: the label (0…9), then 1,024 red, 1,024 green and 1,024 blue bytes,
    each plane row-major 32 × 32.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if not raw or len(raw) % CIFAR10_RECORD_BYTES:
        raise ValueError(
            f"{path}: {len(raw)} bytes is not a whole number of CIFAR-10 binary records "
            f"({CIFAR10_RECORD_BYTES} bytes each: 1 label byte + 3,072 pixel bytes)"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
    y = records[:, 0].astype(np.int32)
    if y.max() >= 10:
        raise ValueError(
            f"{path}: label byte {int(y.max())} outside 0…9; not a CIFAR-10 binary batch "
            "(CIFAR-100's binary format has two label bytes and is not supported)"
        )
    x = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
    return x, y


def _find_bin(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.bin", f"{stem}.bin.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_cifar10_bin(folder: Path) -> VisionData:
    train = [_find_bin(folder, name) for name in CIFAR10_TRAIN]
    missing = [f"{n}.bin[.gz]" for n, p in zip(CIFAR10_TRAIN, train) if p is None]
    if missing:
        raise DataNotFoundError(f"cifar10: {missing} missing in {str(folder)!r}. {_expected_files('cifar10')}")
    parts = [read_cifar10_bin(p) for p in train]  # type: ignore[arg-type]
    x_tr, y_tr = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    test = _find_bin(folder, CIFAR10_TEST)
    if test is not None:
        x_te, y_te = read_cifar10_bin(test)
        return VisionData("cifar10", x_tr, y_tr, x_te, y_te, 10, note=f"CIFAR-10 binary version from {folder}")
    first = _find_bin(folder, CIFAR10_TEST_FIRST1000)
    if first is None:
        raise DataNotFoundError(
            f"cifar10: no test batch ({CIFAR10_TEST}.bin[.gz] or {CIFAR10_TEST_FIRST1000}"
            f".bin[.gz]) in {str(folder)!r}. {_expected_files('cifar10')}"
        )
    x_te, y_te = read_cifar10_bin(first)
    return VisionData(
        CIFAR10_FIRST1000_NAME,
        x_tr,
        y_tr,
        x_te,
        y_te,
        10,
        note=(
            f"VARIANT, not standard CIFAR-10 test accuracy: the official training set ({x_tr.shape[0]} images) "
            f"and only the first {x_te.shape[0]} images of the official test batch, binary version from {folder}"
        ),
    )


def _cifar10_location(data_dir: str | os.PathLike | None) -> tuple[str, Path]:
    """``("pickle" | "bin", folder)``: the first folder among DIR/cifar-10-batches-py, DIR/cifar-10-batches-bin,
    DIR/cifar10, DIR holding ``data_batch_1`` (pickle) or ``data_batch_1.bin[.gz]`` (binary)."""
    root = resolve_data_dir(data_dir, "cifar10")
    for folder in (root / CIFAR10_FOLDER, root / CIFAR10_BIN_FOLDER, root / "cifar10", root):
        if (folder / CIFAR10_TRAIN[0]).is_file():
            return "pickle", folder
        if _find_bin(folder, CIFAR10_TRAIN[0]) is not None:
            return "bin", folder
    raise DataNotFoundError(f"cifar10: no CIFAR-10 batches found under {str(root)!r}. {_expected_files('cifar10')}")


def load_cifar10(data_dir: str | os.PathLike | None = None) -> VisionData:
    """CIFAR-10 from the python pickles (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``) or the
    binary version (``data_batch_1..5.bin[.gz]``, ``test_batch.bin[.gz]`` or, as a labelled variant,
    ``test_batch_first1000.bin[.gz]``); see the module docstring for the folders searched."""
    kind, folder = _cifar10_location(data_dir)
    if kind == "bin":
        return _load_cifar10_bin(folder)
    parts = [_cifar_arrays(_unpickle(p), b"labels", p) for p in (_find(folder, (n,), "cifar10") for n in CIFAR10_TRAIN)]
    test_path = _find(folder, (CIFAR10_TEST,), "cifar10")
    x_te, y_te = _cifar_arrays(_unpickle(test_path), b"labels", test_path)
    x_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return VisionData("cifar10", x_tr, y_tr, x_te, y_te, 10, note=f"CIFAR-10 python pickles from {folder}")


def load_cifar100(data_dir: str | os.PathLike | None = None) -> VisionData:
    """CIFAR-100 (fine labels) from the python pickles (``cifar-100-python/train``, ``test``)."""
    folder = _cifar_folder(data_dir, "cifar100", CIFAR100_FOLDER)
    train_path = _find(folder, ("train",), "cifar100")
    test_path = _find(folder, ("test",), "cifar100")
    x_tr, y_tr = _cifar_arrays(_unpickle(train_path), b"fine_labels", train_path)
    x_te, y_te = _cifar_arrays(_unpickle(test_path), b"fine_labels", test_path)
    return VisionData("cifar100", x_tr, y_tr, x_te, y_te, 100, note=f"CIFAR-100 python pickles from {folder}")


# -------------------------------------------------------------------------------------------- tfds


_TFDS_NAMES = {"mnist": ("mnist", 10), "cifar10": ("cifar10", 10), "cifar100": ("cifar100", 100)}


def load_tfds(dataset: str, data_dir: str | os.PathLike | None = None) -> VisionData:
    """A data set already prepared by tensorflow-datasets in a local ``data_dir`` (never downloads)."""
    if dataset not in _TFDS_NAMES:
        raise ValueError(f"tensorflow-datasets source supports {sorted(_TFDS_NAMES)}, got {dataset!r}")
    root = resolve_data_dir(data_dir, dataset)
    try:
        import tensorflow_datasets as tfds  # noqa: PLC0415 (optional, heavy)
    except ImportError as error:
        raise ImportError(
            "the tfds data source needs tensorflow-datasets: pip install 'fg2u-bench-vision[tfds]' "
            "(or use the raw-file loaders: --data-source files)"
        ) from error
    name, num_classes = _TFDS_NAMES[dataset]
    arrays = {}
    for split in ("train", "test"):
        try:
            ds = tfds.load(name, split=split, data_dir=str(root), download=False, batch_size=-1, as_supervised=True)
        except Exception as error:  # tfds raises several types for a missing preparation
            raise DataNotFoundError(
                f"tensorflow-datasets could not read {name!r} ({split}) from {str(root)!r}: {error}. Prepare it "
                f"there beforehand (tfds build {name} --data_dir {root}); nothing is downloaded at run time."
            ) from error
        x, y = tfds.as_numpy(ds)
        arrays[split] = (np.asarray(x, np.float32) / 255.0, np.asarray(y, np.int32))
    return VisionData(
        dataset, *arrays["train"], *arrays["test"], num_classes, note=f"tensorflow-datasets {name} in {root}"
    )


# ------------------------------------------------------------------------------------------ facade


def load_dataset(
    name: str, data_dir: str | os.PathLike | None = None, *, source: str = "files", split_seed: int = 0
) -> VisionData:
    """Loads ``name`` ∈ :data:`DATASETS` from ``source`` ∈ {``"files"``, ``"tfds"``}."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS}")
    if source not in ("files", "tfds"):
        raise ValueError(f"unknown data source {source!r}; choose 'files' (raw idx/pickle files) or 'tfds'")
    if name == "digits":
        return load_digits(split_seed=split_seed)
    if name == "mnist-test-resplit":
        return load_mnist_test_resplit(data_dir, split_seed=split_seed)
    if source == "tfds":
        return load_tfds(name, data_dir)
    return {"mnist": load_mnist, "cifar10": load_cifar10, "cifar100": load_cifar100}[name](data_dir)
