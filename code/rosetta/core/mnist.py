"""MNIST from the original IDX files, checked before use.

``load()`` returns float32 images in NCHW, normalised with the training set's
mean and standard deviation, and int64 labels. Every file's SHA-256 is checked
against ``data/mnist/SHA256SUMS`` first; a missing, corrupt or truncated file
raises :class:`MnistError` saying which file and what to do.
"""
import gzip
import hashlib
from pathlib import Path

import numpy as np

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
FIX = "restore it with `git checkout -- data/mnist` (or copy the files from the MNIST release)"


class MnistError(ValueError):
    """A problem with the MNIST files on disk."""


def default_dir() -> Path:
    from rosetta.core.paths import data_dir
    return data_dir() / "mnist"


def read_checksums(folder: Path) -> dict:
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        raise MnistError(f"missing checksum list {sums}; {FIX}")
    table = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            table[name.lstrip("*")] = digest
    return table


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, expected: str) -> None:
    if not path.is_file():
        raise MnistError(f"missing MNIST file {path}; {FIX}")
    actual = sha256(path)
    if actual != expected:
        raise MnistError(
            f"checksum mismatch for {path}: expected sha256 {expected}, found {actual}; "
            f"the file is corrupt or was replaced, {FIX}"
        )


def read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Parse one gzip-compressed IDX file into a uint8 array."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise MnistError(f"cannot decompress {path} ({err}): the file is truncated or not gzip; {FIX}") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MnistError(f"{path} is truncated: {len(raw)} bytes, shorter than its {header}-byte IDX header; {FIX}")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise MnistError(f"bad magic number in {path}: expected {magic}, found {found}; "
                         f"this is not the IDX file it is named for; {FIX}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise MnistError(f"{path} is truncated or padded: header promises {size} bytes of data for shape "
                         f"{shape}, found {len(raw) - header}; {FIX}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_raw(split: str, folder=None, check: bool = True):
    """uint8 images (N, 28, 28) and labels (N,) of ``split`` ('train' or 'test')."""
    if split not in FILES:
        raise MnistError(f"unknown MNIST split {split!r}: expected 'train' or 'test'")
    folder = Path(folder) if folder is not None else default_dir()
    paths = [folder / name for name in FILES[split]]
    if check:
        sums = read_checksums(folder)
        for p in paths:
            if p.name not in sums:
                raise MnistError(f"{folder / 'SHA256SUMS'} has no checksum for {p.name}; {FIX}")
            verify(p, sums[p.name])
    images = read_idx(paths[0], IMAGE_MAGIC, 3)
    labels = read_idx(paths[1], LABEL_MAGIC, 1)
    if len(images) != len(labels):
        raise MnistError(f"{paths[0].name} holds {len(images)} images but {paths[1].name} holds "
                         f"{len(labels)} labels; the pair does not match; {FIX}")
    return images, labels


def load(folder=None):
    """Training and test sets as ``(x_train, y_train, x_test, y_test)``.

    Images are float32 NCHW ``(N, 1, 28, 28)``: pixels scaled to [0, 1], then
    standardised with the mean and standard deviation of the training images
    (both sets use the training figures). Labels are int64.
    """
    xtr, ytr = load_raw("train", folder)
    xte, yte = load_raw("test", folder)
    scaled = xtr.astype(np.float64) / 255.0
    # float32 arithmetic with the figures rounded to float32 first: NumPy 1 did that for a float64
    # scalar by itself, NumPy 2 would compute in float64; this way both give the same images
    mean, std = np.float32(scaled.mean()), np.float32(scaled.std())

    def norm(x):
        return ((x.astype(np.float32) / np.float32(255.0) - mean) / std)[:, None, :, :]

    return norm(xtr), ytr.astype(np.int64), norm(xte), yte.astype(np.int64)
