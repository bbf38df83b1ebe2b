"""Fashion-MNIST from Debian's dataset-fashion-mnist package, read with gzip + numpy.

The files are gzip'd IDX: a big-endian header (16 bytes for images: magic, count, rows, cols;
8 for labels: magic, count), then uint8 pixels / labels. Nothing is downloaded.
"""

import gzip
import os
import struct

import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"  # where the Debian package puts it

# Inputs are scaled to [0, 1] and NOT mean-subtracted: the background (about half of all pixels)
# then stays exactly 0, which histogram calibration ignores (pytorch-quantization's entropy sets
# bin 0 to bin 1). Subtracting the mean turns the background into a spike at |x| = 0.81 in the first
# conv's input histogram, and entropy calibration clips every brighter pixel there (README.md).
NORMALIZATION = "x/255"

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


def _read_idx(path, magic, header_fields):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    header_size = 4 * (1 + header_fields)
    fields = struct.unpack(">" + "I" * (1 + header_fields), raw[:header_size])
    if fields[0] != magic:
        raise ValueError(f"{path}: IDX magic {fields[0]}, expected {magic}")
    data = np.frombuffer(raw, dtype=np.uint8, offset=header_size)
    shape = fields[1:]
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says shape {shape}")
    return data.reshape(shape)


def load_split(split, data_dir=None):
    """Returns (images uint8 [N, 28, 28], labels uint8 [N]) of split "train" or "t10k"."""
    data_dir = data_dir or os.environ.get("FASHION_MNIST_DIR", DEFAULT_DIR)
    images = _read_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"), _IMAGES_MAGIC, 3)
    labels = _read_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"), _LABELS_MAGIC, 1)
    if len(images) != len(labels):
        raise ValueError(f"{split}: {len(images)} images but {len(labels)} labels")
    return images, labels


def normalize(images):
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] in [0, 1] (see NORMALIZATION)."""
    return (images.astype(np.float32) / 255.0)[:, None, :, :]


def write_eval_set(images, labels, out_dir):
    """Writes the test set for the Node.js evaluator: normalized float32 NCHW images
    (little-endian, test_images.f32) and uint8 labels (test_labels.u8). Returns both paths."""
    os.makedirs(out_dir, exist_ok=True)
    images_path = os.path.join(out_dir, "test_images.f32")
    labels_path = os.path.join(out_dir, "test_labels.u8")
    normalize(images).astype("<f4").tofile(images_path)
    labels.astype(np.uint8).tofile(labels_path)
    return images_path, labels_path
