"""The CloudVolume codec cases shared by the local (tests/interop) and cloud (tests/cloud) interop tests.

Each case is an encoding with its settings (scale members both tools read, named as
CloudVolume names them) and a byte compression, spelled for each tool: CloudVolume's
``compress`` argument and bigarrays' ``compression`` (``"auto"`` is CloudVolume's default:
gzip for compresso and crackle, none otherwise; bigarrays' own default also gzips fpzip and
kempressed, so bigarrays is given CloudVolume's choice explicitly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CASES", "CodecCase", "cv_info", "sample", "stored_payload"]


@dataclass(frozen=True)
class CodecCase:
    encoding: str
    dtype: str
    channels: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    #: "auto" (CloudVolume's default), "gzip", "br" or None (no byte compression).
    compression: str | None = "auto"
    lossless: bool = True

    @property
    def cv_compress(self) -> Any:
        """CloudVolume's ``compress`` argument for this case."""
        return {"auto": None, None: False}.get(self.compression, self.compression)

    @property
    def ba_compression(self) -> str | None:
        """bigarrays' ``compression`` argument for this case (what CloudVolume's default stores)."""
        if self.compression == "auto":
            return "gzip" if self.encoding in ("compresso", "crackle") else None
        return self.compression

    @property
    def layer_type(self) -> str:
        return "segmentation" if self.encoding in ("compresso", "crackle", "compressed_segmentation") else "image"

    @property
    def suffix(self) -> str:
        """The suffix of chunk files on local disk."""
        if self.compression == "auto":
            return ".gz" if self.encoding in ("compresso", "crackle") else ""
        return {"br": ".br", "gzip": ".gz", None: ""}[self.compression]

    def __str__(self) -> str:
        settings = "-".join(f"{k.split('_', 1)[1]}{v}" for k, v in self.settings.items())
        return "-".join(p for p in (self.encoding, self.dtype, f"{self.channels}ch", settings,
                                    str(self.compression)) if p)


CASES = [
    CodecCase("compresso", "uint32"),
    CodecCase("compresso", "uint64", compression=None),
    CodecCase("compresso", "uint8", compression="br"),
    CodecCase("crackle", "uint16"),
    CodecCase("crackle", "uint64", compression=None),
    CodecCase("jxl", "uint8", settings={"jxl_quality": 100}, compression=None),
    CodecCase("jxl", "uint8", lossless=False),
    CodecCase("jxl", "uint8", settings={"jxl_quality": 60, "jxl_effort": 3, "jxl_decodingspeed": 1},
              compression="br", lossless=False),
    CodecCase("fpzip", "float32"),
    CodecCase("fpzip", "float32", compression="gzip"),  # bigarrays' default for fpzip
    CodecCase("fpzip", "float64", compression="br"),
    CodecCase("fpzip", "float32", settings={"fpzip_precision": 16}, lossless=False),
    CodecCase("kempressed", "float32", channels=2),
    CodecCase("zfpc", "float32", channels=2),
    CodecCase("zfpc", "float32", settings={"zfpc_tolerance": 0.01}, lossless=False),
    CodecCase("zfpc", "float32", channels=3, settings={"zfpc_correlated_dims": [True, True, False, False]}),
    CodecCase("raw", "uint16", compression="br"),
    CodecCase("compressed_segmentation", "uint64", compression="br"),
]


def sample(case: CodecCase, shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """``(x, y, z, c)`` data of ``shape`` the case's encoding is made for."""
    full = shape + (case.channels,)
    x, y, z, c = np.meshgrid(*[np.arange(n) for n in full], indexing="ij")
    dt = np.dtype(case.dtype)
    if case.layer_type == "segmentation":
        labels = np.array([0, 3, 17, 200, np.iinfo(dt).max // 3, np.iinfo(dt).max], dtype=dt)
        out = labels[(x // 5 + 2 * (y // 7) + 3 * (z // 3)) % len(labels)]
        out[rng.random(full) < 0.02] = labels[1]
        return np.asfortranarray(out)
    if case.encoding == "jxl":
        smooth = 90 + 40 * np.sin(x / 6) + 30 * np.cos(y / 5) + 2 * z + 20 * c
        return np.asfortranarray(np.clip(smooth + rng.integers(-4, 5, full), 0, 255).astype(np.uint8))
    if case.encoding == "kempressed":  # affinities in [0, 1]
        return np.asfortranarray(rng.random(full).astype(dt))
    if dt.kind == "f":
        return np.asfortranarray((np.sin(x / 7) * np.cos(y / 9) + z / 10 + c + 0.01 * rng.standard_normal(full))
                                 .astype(dt))
    return np.asfortranarray(rng.integers(0, 2000, size=full).astype(dt))


def cv_info(case: CodecCase, size: tuple[int, int, int], chunk: tuple[int, int, int],
            offset: tuple[int, int, int]) -> dict[str, Any]:
    """CloudVolume's info for the case (one scale), its settings in the scale."""
    from cloudvolume import CloudVolume  # type: ignore[import-untyped]

    info: dict[str, Any] = CloudVolume.create_new_info(
        num_channels=case.channels, layer_type=case.layer_type, data_type=case.dtype, encoding=case.encoding,
        resolution=[8, 8, 40], voxel_offset=list(offset), volume_size=list(size), chunk_size=list(chunk),
        compressed_segmentation_block_size=(8, 8, 8),
    )
    info["scales"][0].update(case.settings)
    return info


def stored_payload(data: bytes, suffix_or_encoding: str | None) -> bytes:
    """A stored chunk's encoded bytes: its gzip / brotli compression undone."""
    import gzip

    import brotli

    if suffix_or_encoding in (".gz", "gzip"):
        return gzip.decompress(data)
    if suffix_or_encoding in (".br", "br"):
        return bytes(brotli.decompress(data))
    return data
