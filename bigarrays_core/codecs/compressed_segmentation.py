"""``compressed_segmentation``: uint32/uint64 labels, any channel count, block size from the info.

Each channel is encoded and decoded as a 3-D volume by the ``compressed-segmentation``
package (seung-lab); this module writes and reads the multi-channel wrapper around the
channel streams (precomputed-format.md §3.5: ``num_channels`` uint32 word offsets, then
the streams).

The package's decoder trusts its input, so before decoding every block header is checked
against the stream (encoded bits, value and lookup-table offsets in range): truncated or
corrupt chunks raise instead of returning garbage or reading past the buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

import compressed_segmentation as cseg
import numpy as np

from bigarrays_core.codecs.base import ChunkCodec, Shape4

__all__ = ["CompressedSegmentationCodec"]

_ONE_CHANNEL = (1).to_bytes(4, "little")
_VALID_BITS = np.array([0, 1, 2, 4, 8, 16, 32], dtype=np.uint32)
#: Refuse padding (see _checked_padding) beyond this: only corrupt data asks for more.
_MAX_PAD_WORDS = 1 << 24


class CompressedSegmentationCodec(ChunkCodec):
    name = "compressed_segmentation"
    content_type = "image/x.compressed_segmentation"

    def __init__(self, dtype: np.dtype, num_channels: int, block_size: Sequence[int] = (8, 8, 8)) -> None:
        super().__init__(dtype, num_channels)
        if self.dtype not in (np.dtype(np.uint32), np.dtype(np.uint64)):
            raise ValueError(f"compressed_segmentation stores uint32 or uint64, not {self.dtype.name}")
        self.block_size = tuple(int(b) for b in block_size)
        self._entry_words = self.dtype.itemsize // 4

    # -- encode --------------------------------------------------------------------------
    def encode(self, chunk: np.ndarray) -> bytes:
        native = self.dtype.newbyteorder("=")
        streams = []
        for c in range(chunk.shape[3]):
            channel = np.asfortranarray(chunk[:, :, :, c], dtype=native)
            encoded = cseg.compress(channel, block_size=self.block_size, order="F")
            streams.append(bytes(encoded)[4:])  # drop the one-channel offset table
        if len(streams) == 1:
            return _ONE_CHANNEL + streams[0]
        offsets = []
        position = len(streams)
        for s in streams:
            offsets.append(position)
            position += len(s) // 4
        return np.asarray(offsets, dtype="<u4").tobytes() + b"".join(streams)

    # -- decode --------------------------------------------------------------------------
    def decode(self, data: bytes, shape: Shape4) -> np.ndarray:
        if not isinstance(data, bytes):
            data = bytes(data)  # the decoder takes bytes only
        x, y, z, c = shape
        nwords = len(data) // 4
        if len(data) % 4 or nwords < c:
            raise ValueError(f"{len(data)} bytes is not a compressed_segmentation chunk of {c} channel(s)")
        words = np.frombuffer(data, dtype="<u4", count=nwords)
        offsets = [int(o) for o in words[:c]] + [nwords]
        if offsets[0] != c or any(b <= a for a, b in zip(offsets, offsets[1:])):
            raise ValueError(f"bad channel offsets {offsets[:c]} for {c} channel(s) in {nwords} words")
        spatial = (x, y, z)
        if c == 1:
            pad = self._checked_padding(words[1:], spatial)
            buf = data if pad == 0 else data + bytes(4 * pad)
            out = cseg.decompress(buf, spatial, self.dtype, block_size=self.block_size, order="F")
            return np.asarray(out).reshape(shape, order="F")
        out = np.empty(shape, dtype=self.dtype, order="F")
        for i in range(c):
            stream = words[offsets[i]:offsets[i + 1]]
            pad = self._checked_padding(stream, spatial)
            buf = _ONE_CHANNEL + stream.tobytes() + bytes(4 * pad)
            out[:, :, :, i] = cseg.decompress(buf, spatial, self.dtype, block_size=self.block_size, order="F")
        return out

    def _checked_padding(self, stream: np.ndarray, spatial: tuple[int, int, int]) -> int:
        """Validate one channel stream's block headers; return the zero words to append.

        Valid encoders may store a lookup table with fewer than ``2**bits`` entries at the
        end of the stream; appending zero words keeps every possible lookup inside the
        buffer.
        """
        bx, by, bz = self.block_size
        nblocks = -(-spatial[0] // bx) * -(-spatial[1] // by) * -(-spatial[2] // bz)
        n = len(stream)
        if n < 2 * nblocks:
            raise ValueError(f"channel stream of {n} words is too short for {nblocks} block headers")
        headers = stream[: 2 * nblocks].reshape(nblocks, 2)
        table_offset = (headers[:, 0] & 0xFFFFFF).astype(np.int64)
        bits = (headers[:, 0] >> 24).astype(np.uint32)
        values_offset = headers[:, 1].astype(np.int64)
        if not np.isin(bits, _VALID_BITS).all():
            bad = sorted(set(bits[~np.isin(bits, _VALID_BITS)].tolist()))
            raise ValueError(f"block headers with invalid encoded bits {bad[:5]}")
        value_words = -(-(bits.astype(np.int64) * (bx * by * bz)) // 32)
        if (values_offset + value_words > n).any():
            raise ValueError("a block's encoded values run past the end of the channel stream")
        ew = self._entry_words
        if (table_offset + ew > n).any():
            raise ValueError("a block's lookup table starts past the end of the channel stream")
        table_end = table_offset + (np.left_shift(np.int64(1), bits.astype(np.int64))) * ew
        pad = int(table_end.max()) - n
        if pad > _MAX_PAD_WORDS:
            raise ValueError("a block's lookup table would reach far past the end of the channel stream")
        return max(0, pad)
