"""The readable dataset summary ``bigarrays info`` prints."""

from __future__ import annotations

from bigarrays_core.format import Info
from bigarrays_core.geometry import Box

__all__ = ["describe"]


def describe(info: Info) -> str:
    """A one-paragraph summary of every scale of a dataset: a scale bigarrays cannot read
    (``Scale.problem``) is listed like the others, marked ``UNREADABLE`` with its problem."""
    lines = [f"{info.layer_type}, {info.data_type}, {info.num_channels} channel(s), {len(info.scales)} scale(s)"]
    for s in info.scales:
        bounds = Box.from_shape(s.voxel_offset, s.size)
        comp = f"+{s.compression['id']}" if s.compression else ""
        res = "x".join(f"{r:g}" for r in s.resolution)
        grid = "x".join(str(-(-n // c)) for n, c in zip(s.size, s.chunk_size))
        lines.append(
            f"  mip {s.index}: key {s.key!r}, {res} nm, bounds {bounds} (size {'x'.join(map(str, s.size))}), "
            f"chunks {'x'.join(map(str, s.chunk_size))} ({grid} grid), {s.encoding}{comp}"
            + (f", {_sharding(s.sharding)}" if s.sharding else "")
            + (f"\n    UNREADABLE: {s.problem.message}" if s.problem is not None else "")
        )
    return "\n".join(lines)


def _sharding(spec: dict[str, object]) -> str:
    """``sharded (2^15 shard files of 2^6 minishards, identity hash, preshift 9, gzip index, gzip data)``."""
    return (f"sharded (2^{spec.get('shard_bits')} shard files of 2^{spec.get('minishard_bits')} minishards, "
            f"{spec.get('hash')} hash, preshift {spec.get('preshift_bits')}, "
            f"{spec.get('minishard_index_encoding', 'raw')} index, {spec.get('data_encoding', 'raw')} data)")
