"""MNIST loading: the real files load with the published figures; every bad input gives a clear error."""
import gzip
import hashlib
import shutil

import numpy as np
import pytest

from rosetta.core import mnist
from rosetta.core.mnist import MnistError


def test_real_files_load_with_published_figures():
    xtr, ytr, xte, yte = mnist.load()
    assert xtr.shape == (60000, 1, 28, 28) and xte.shape == (10000, 1, 28, 28)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert np.bincount(ytr).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(float(xtr.mean())) < 1e-5 and abs(float(xtr.std()) - 1) < 1e-4
    raw, _ = mnist.load_raw("train")
    assert round(raw.mean() / 255, 4) == 0.1307 and round((raw / 255).std(), 4) == 0.3081


@pytest.fixture
def copy(tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(mnist.default_dir(), folder)
    for p in folder.iterdir():
        p.chmod(0o644)
    return folder


def rewrite(folder, name, data: bytes, update_sum=True):
    """Replace a file's bytes (gzip-compressed), optionally keeping SHA256SUMS consistent."""
    path = folder / name
    path.write_bytes(gzip.compress(data))
    if update_sum:
        sums = (folder / "SHA256SUMS").read_text().splitlines()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        sums = [f"{digest}  {name}" if line.endswith(name) else line for line in sums]
        (folder / "SHA256SUMS").write_text("\n".join(sums) + "\n")


def test_missing_file(copy):
    (copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MnistError, match=r"missing MNIST file .*t10k-labels-idx1-ubyte.gz.*git checkout"):
        mnist.load(copy)


def test_checksum_mismatch_names_file_expected_and_actual(copy):
    path = copy / "train-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    expected = mnist.read_checksums(copy)[path.name]
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(MnistError) as err:
        mnist.load(copy)
    msg = str(err.value)
    assert "checksum mismatch" in msg and path.name in msg and expected in msg and actual in msg


def test_bad_magic_number(copy):
    labels = gzip.decompress((copy / "t10k-labels-idx1-ubyte.gz").read_bytes())
    rewrite(copy, "t10k-labels-idx1-ubyte.gz", (2051).to_bytes(4, "big") + labels[4:])
    with pytest.raises(MnistError, match="bad magic number .* expected 2049, found 2051"):
        mnist.load_raw("test", copy)


def test_truncated_data(copy):
    labels = gzip.decompress((copy / "t10k-labels-idx1-ubyte.gz").read_bytes())
    rewrite(copy, "t10k-labels-idx1-ubyte.gz", labels[:-10])
    with pytest.raises(MnistError, match="truncated or padded: header promises 10000 bytes .* found 9990"):
        mnist.load_raw("test", copy)


def test_truncated_gzip_stream(copy):
    path = copy / "t10k-labels-idx1-ubyte.gz"
    rewrite(copy, path.name, gzip.decompress(path.read_bytes()))
    data = path.read_bytes()[:-200]
    path.write_bytes(data)
    rewrite_sum = hashlib.sha256(data).hexdigest()
    sums = [f"{rewrite_sum}  {path.name}" if line.endswith(path.name) else line
            for line in (copy / "SHA256SUMS").read_text().splitlines()]
    (copy / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    with pytest.raises(MnistError, match="cannot decompress .* truncated or not gzip"):
        mnist.load_raw("test", copy)


def test_image_label_count_mismatch(copy):
    labels = gzip.decompress((copy / "t10k-labels-idx1-ubyte.gz").read_bytes())
    header = (2049).to_bytes(4, "big") + (9999).to_bytes(4, "big")
    rewrite(copy, "t10k-labels-idx1-ubyte.gz", header + labels[8:-1])
    with pytest.raises(MnistError, match="holds 10000 images but .* holds 9999 labels"):
        mnist.load_raw("test", copy)


def test_unknown_split():
    with pytest.raises(MnistError, match="expected 'train' or 'test'"):
        mnist.load_raw("validation")
