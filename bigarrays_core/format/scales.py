"""Arithmetic between the scales of one info: factors, and boxes carried from one mip to another.

Scale ``k`` of a pyramid is coarser than scale ``j < k`` by an integer factor per axis (the
ratio of their resolutions). Voxel ``i`` of the coarser scale covers voxels ``f*i`` to
``f*i + f - 1`` of the finer one, in absolute coordinates (Neuroglancer's and TensorStore's
mapping; :func:`bigarrays_core.format.create_info` lays out voxel offsets and sizes that
way). A box carried to a coarser scale is rounded outwards, so it covers every coarse voxel
that any of its voxels falls in. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import index

from bigarrays_core.errors import InfoError
from bigarrays_core.format.info import Info, Scale
from bigarrays_core.geometry import Box, Vec3

__all__ = ["box_at_mip", "coarsen_box", "downsample_factor", "refine_box"]

#: How far a resolution ratio may be from an integer (relative) and still count as one.
_TOLERANCE = 1e-6


def downsample_factor(fine: Scale, coarse: Scale) -> Vec3:
    """The integer factor per axis between two scales: ``coarse.resolution / fine.resolution``.

    Raises :class:`InfoError` naming both scales when a ratio is not a positive integer
    (``coarse`` is then not a downsampling of ``fine``).
    """
    out = []
    for axis, r_fine, r_coarse in zip("xyz", fine.resolution, coarse.resolution):
        ratio = r_coarse / r_fine
        f = round(ratio)
        if f < 1 or abs(ratio - f) > _TOLERANCE * ratio:
            raise InfoError(
                f"info.scales[{coarse.index}].resolution: scale {coarse.key!r} is not an integer downsampling "
                f"of scale {fine.key!r} along {axis} ({r_coarse:g} / {r_fine:g} = {ratio:g})",
                field=f"info.scales[{coarse.index}].resolution",
            )
        out.append(f)
    return (out[0], out[1], out[2])


def coarsen_box(box: Box, factor: Sequence[int]) -> Box:
    """The box of coarse voxels that the voxels of ``box`` fall in (rounded outwards)."""
    (a0, a1, a2), (b0, b1, b2) = box.start, box.stop
    f0, f1, f2 = factor
    f0, f1, f2 = index(f0), index(f1), index(f2)  # Python ints: the box is built unchecked
    return Box._trusted((a0 // f0, a1 // f1, a2 // f2), (-(-b0 // f0), -(-b1 // f1), -(-b2 // f2)))


def refine_box(box: Box, factor: Sequence[int]) -> Box:
    """The fine voxels that the coarse voxels of ``box`` cover."""
    (a0, a1, a2), (b0, b1, b2) = box.start, box.stop
    f0, f1, f2 = factor
    f0, f1, f2 = index(f0), index(f1), index(f2)  # Python ints: the box is built unchecked
    return Box._trusted((a0 * f0, a1 * f1, a2 * f2), (b0 * f0, b1 * f1, b2 * f2))


def box_at_mip(info: Info, box: Box, mip: int, from_mip: int = 0) -> Box:
    """``box`` (voxels of scale ``from_mip``) in the voxels of scale ``mip``.

    To a coarser scale the box is rounded outwards (:func:`coarsen_box`); to a finer one it
    covers exactly the fine voxels of the coarse ones (:func:`refine_box`). The result is
    not clipped to the scale's bounds. Raises :class:`InfoError` if a scale is absent or the
    two are not integer multiples of each other.
    """
    if mip == from_mip:
        info.scale(mip)
        return box
    if mip > from_mip:
        return coarsen_box(box, downsample_factor(info.scale(from_mip), info.scale(mip)))
    return refine_box(box, downsample_factor(info.scale(mip), info.scale(from_mip)))
