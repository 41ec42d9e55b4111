"""The datasets the interop tests exchange: geometries, encodings and their sample data.

Owns what every interop module agrees on: :class:`Geometry` (size, chunk, offset, mips),
:class:`Codec` (encoding, dtype, channels) with the data each codec can hold, and the
model of CloudVolume's multi-channel image-decoding quirk. No I/O, no peer libraries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CODECS",
    "GEOMETRIES",
    "Codec",
    "Geometry",
    "assert_matches_written",
    "JPEG_MEAN_TOLERANCE",
    "JPEG_TOLERANCE",
    "cv_scrambled",
    "sample",
]

#: Largest per-voxel error accepted between a JPEG round trip and the original (the data
#: from :func:`sample` is smooth; the mean error is ~2, see :data:`JPEG_MEAN_TOLERANCE`).
JPEG_TOLERANCE = 24
JPEG_MEAN_TOLERANCE = 4.0


@dataclass(frozen=True)
class Geometry:
    """A volume's mip-0 layout. ``size`` is never a multiple of ``chunk`` (clipped edge chunks)."""

    name: str
    size: tuple[int, int, int]
    chunk: tuple[int, int, int]
    offset: tuple[int, int, int]
    resolution: tuple[int, int, int] = (4, 4, 40)
    num_mips: int = 2
    factor: tuple[int, int, int] = (2, 2, 1)

    def __str__(self) -> str:
        return self.name


GEOMETRIES = (
    # Negative offset on x and z, chunk boundaries anchored at the offset, clipped upper edges.
    Geometry("negoffset", size=(70, 45, 11), chunk=(32, 16, 8), offset=(-37, 5, -4)),
    # Origin at zero, one partial chunk along every axis.
    Geometry("origin", size=(40, 20, 9), chunk=(16, 16, 4), offset=(0, 0, 0)),
)


@dataclass(frozen=True)
class Codec:
    """A scale encoding with the dtype and channel count it stores."""

    encoding: str
    dtype: str
    channels: int

    @property
    def lossy(self) -> bool:
        return self.encoding == "jpeg"

    @property
    def image(self) -> bool:
        """Chunks are 2-D images with interleaved channels (CloudVolume decodes C > 1 wrongly)."""
        return self.encoding in ("jpeg", "png")

    @property
    def layer_type(self) -> str:
        return "segmentation" if self.encoding == "compressed_segmentation" else "image"

    def __str__(self) -> str:
        short = {"compressed_segmentation": "cseg"}.get(self.encoding, self.encoding)
        return f"{short}-{self.dtype}-c{self.channels}"


CODECS = (
    *(Codec("raw", dt, c) for dt in ("uint8", "uint16", "uint32", "uint64", "int16", "float32") for c in (1, 3)),
    *(Codec("png", dt, c) for dt in ("uint8", "uint16") for c in (1, 3)),
    *(Codec("jpeg", "uint8", c) for c in (1, 3)),
    *(Codec("compressed_segmentation", dt, c) for dt in ("uint32", "uint64") for c in (1, 2)),
)


def sample(rng: np.random.Generator, codec: Codec, shape: tuple[int, int, int]) -> np.ndarray:
    """Fortran-ordered ``shape + (channels,)`` data that exercises ``codec``.

    Lossless codecs get values over the dtype's whole range (negative ints, huge uint64
    labels, float32 with fractions); jpeg gets a smooth image plus mild noise, so lossy
    round trips stay within :data:`JPEG_TOLERANCE`; segmentation gets a few labels per block
    with values above 2**32 for uint64.
    """
    full = shape + (codec.channels,)
    dt = np.dtype(codec.dtype)
    if codec.encoding == "jpeg":
        x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
        base = 110 + 40 * np.sin(x / 7.0) + 30 * np.cos(y / 5.0) + 4 * z
        planes = [base + 25 * c for c in range(codec.channels)]
        out = np.stack(planes, axis=-1) + rng.normal(0, 2, full)
        return np.asfortranarray(out.clip(0, 255).astype(np.uint8))
    if codec.encoding == "compressed_segmentation":
        labels = rng.choice(np.array([1, 7, 2**31 + 5, 123456], dtype=np.uint64), size=full)
        if dt == np.uint64:
            labels = labels * np.uint64(2**20) + np.uint64(2**40)
        return np.asfortranarray(labels.astype(dt))
    if dt.kind == "f":
        return np.asfortranarray((rng.standard_normal(full) * 1e4).astype(dt))
    info = np.iinfo(dt)
    return np.asfortranarray(rng.integers(info.min, info.max, size=full, dtype=dt, endpoint=True))


def cv_scrambled(chunk: np.ndarray) -> np.ndarray:
    """What CloudVolume returns for a correct multi-channel PNG/JPEG chunk (x, y, z, c).

    CloudVolume decodes the interleaved image (pixels ``[y*z][x][c]``) with
    ``ravel().reshape(shape, order="F")``, i.e. as if it were planar
    (docs/format.md, "Encodings"). This reproduces that for one chunk.
    """
    interleaved = np.ascontiguousarray(chunk.transpose(2, 1, 0, 3)).ravel()
    return interleaved.reshape(chunk.shape, order="F")


def assert_matches_written(actual: np.ndarray, written: np.ndarray, codec: Codec) -> None:
    """``actual`` equals ``written`` exactly, or within the JPEG tolerances for jpeg."""
    assert actual.shape == written.shape and actual.dtype == written.dtype, (
        f"{codec}: got {actual.shape} {actual.dtype}, wrote {written.shape} {written.dtype}"
    )
    if not codec.lossy:
        np.testing.assert_array_equal(actual, written, err_msg=str(codec))
        return
    error = np.abs(actual.astype(np.int16) - written.astype(np.int16))
    assert error.max() <= JPEG_TOLERANCE, f"{codec}: max JPEG error {error.max()} > {JPEG_TOLERANCE}"
    assert error.mean() <= JPEG_MEAN_TOLERANCE, f"{codec}: mean JPEG error {error.mean():.2f}"
