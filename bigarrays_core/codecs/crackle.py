"""``crackle``: segmentation labels, lossless, with the ``crackle-codec`` package (seung-lab).

What it stores (CloudVolume's rules): ``uint8``, ``uint16``, ``uint32`` or ``uint64`` labels
(the library refuses signed ones), **one channel** (CloudVolume encodes channel 0 of
whatever it is given; bigarrays refuses more channels instead of dropping them). CloudVolume
reads and writes it (gzipped unless told otherwise); TensorStore does not.

A crackle stream (format version 1, what the library writes) is a header guarded by a
CRC-8, a per-slice index of the crack codes guarded by a CRC-32C, the labels, the crack
codes, a CRC-32C of the labels and one of each slice's connected components. Encoding
calls ``crackle.compress`` as CloudVolume does, so both write the same bytes.

Decoding checks what the library leaves unchecked before trusting its output:

* the header against the chunk expected at the key (shape, label width), and the stream's
  length against the sections its header and index describe (a truncated or padded stream
  is refused; the library reads what is there);
* the labels' CRC-32C (the library checks it only when remapping);
* the per-slice CRC-32Cs: the library computes them while decoding, on worker threads
  that drop the error, leaving a damaged slice's voxels as whatever memory held. So
  bigarrays labels the connected components of each decoded slice again, with the
  library's own labelling (the one its encoder checksums), and compares their CRC-32C
  with the stored one. This costs about half a decode, and is the only way a damaged
  slice becomes an error instead of wrong labels.

:meth:`CrackleCodec.decode_into` decodes only the z slices a region touches. The library
holds the GIL but decodes (and encodes) the slices of one chunk on several threads of its
own; bigarrays lets it use every CPU it may run on.
"""

from __future__ import annotations

import os

import crackle
import crackle.codec
import fastcrackle
import google_crc32c
import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Region4, Shape4
from bigarrays_core.kernels.paste import paste

__all__ = ["CrackleCodec"]

_THREADS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class CrackleCodec(ChunkCodec):
    name = "crackle"
    content_type = "image/x.crackle"
    dtypes = ("uint8", "uint16", "uint32", "uint64")
    channels = (1,)

    def encode(self, chunk: np.ndarray) -> bytes:
        labels = np.asfortranarray(chunk[:, :, :, 0], dtype=self.dtype.newbyteorder("="))
        return bytes(crackle.compress(labels, parallel=_THREADS))

    def decode(self, data: bytes | memoryview, shape: Shape4) -> np.ndarray:
        return self._decoded(data, shape, 0, shape[2])

    def decode_into(self, data: bytes | memoryview, shape: Shape4, region: Region4, out: np.ndarray) -> None:
        """Decode only the z slices ``region`` touches."""
        z0, z1, _ = region[2].indices(shape[2])
        labels = self._decoded(data, shape, z0, z1)
        paste(out, labels[region[0], region[1], :, region[3]])

    def _decoded(self, data: bytes | memoryview, shape: Shape4, z0: int, z1: int) -> np.ndarray:
        """Slices ``z0:z1`` of the chunk, checked as the module docstring says, as a 4-D array."""
        data = bytes(data)  # the library takes bytes only
        header = crackle.header(data)  # checks the magic and the header's CRC-8
        got = (header.sx, header.sy, header.sz)
        if got != shape[:3]:
            raise ValueError(f"crackle stream holds {'x'.join(map(str, got))} voxels, "
                             f"expected {'x'.join(map(str, shape[:3]))}")
        if header.data_width != self.dtype.itemsize or header.signed:
            raise ValueError(f"crackle stream holds {'signed ' if header.signed else ''}{header.data_width * 8}-bit "
                             f"labels, expected {self.dtype.name}")
        _check_length_and_labels(data, header)
        if z1 <= z0:
            return np.zeros((shape[0], shape[1], 0, 1), dtype=self.dtype.newbyteorder("="))
        labels: np.ndarray = crackle.codec.decompress_range(data, z0, z1, _THREADS)
        want = (shape[0], shape[1], z1 - z0)
        if labels.shape != want or labels.dtype.itemsize != self.dtype.itemsize:
            raise ValueError(f"crackle decoded {labels.shape} {labels.dtype}, expected {want} {self.dtype.name}")
        _check_slices(data, header, labels, z0)
        out: np.ndarray = labels.view(self.dtype.newbyteorder("="))[:, :, :, np.newaxis]
        return out


def _check_length_and_labels(data: bytes, header: crackle.CrackleHeader) -> None:
    """The stream is exactly as long as its sections, and its labels match their CRC-32C.

    The sections are those of crackle's format 1 (its README): header, slice index (its
    CRC is checked by the decoder), labels, Markov model, crack codes, the labels' CRC and
    one CRC per slice.
    """
    if header.format_version == 0:
        return  # the first format has neither CRCs nor a trailer to measure against
    sz = header.sz
    labels_start = header.header_bytes + header.grid_index_bytes
    if len(data) < labels_start:
        raise ValueError(f"truncated crackle stream: {len(data)} bytes, its slice index ends at {labels_start}")
    crack_codes = int(np.frombuffer(data, dtype="<u4", count=sz, offset=header.header_bytes).sum(dtype=np.uint64))
    expected = labels_start + header.num_label_bytes + header.num_markov_model_bytes + crack_codes + 4 + 4 * sz
    if len(data) != expected:
        raise ValueError(f"crackle stream is {len(data)} bytes, its header and index describe {expected}")
    labels = np.frombuffer(data, dtype=np.uint8, count=header.num_label_bytes, offset=labels_start)
    if google_crc32c.value(labels) != int.from_bytes(data[len(data) - 4 * sz - 4:len(data) - 4 * sz], "little"):
        raise ValueError("crackle labels do not match their CRC-32C (damaged stream)")


def _check_slices(data: bytes, header: crackle.CrackleHeader, labels: np.ndarray, z0: int) -> None:
    """Each decoded slice's connected components match the stream's CRC-32C for that slice."""
    if header.format_version == 0:  # no CRCs
        return
    nz = labels.shape[2]
    stored = np.frombuffer(data, dtype="<u4", count=header.sz, offset=len(data) - 4 * header.sz)
    components, per_slice, _ = fastcrackle.connected_components(np.asfortranarray(labels))
    # Numbered through the chunk (x fastest); each slice's own numbering starts at 0.
    firsts = np.concatenate(([0], np.cumsum(per_slice, dtype=np.uint64)[:-1])).astype(np.uint32)
    slices = components.reshape((-1, nz), order="F")
    slices -= firsts
    slices.flags.writeable = False  # google_crc32c takes read-only buffers only
    for z in range(nz):
        if google_crc32c.value(slices[:, z]) != int(stored[z0 + z]):
            raise ValueError(f"crackle slice z={z0 + z} does not match its CRC-32C (damaged stream)")
