"""The speed kernels: tight loops compiled with numba that release the GIL.

* :mod:`.paste`: the strided copy of a decoded chunk's region into a cutout (numpy until a
  process has copied enough to pay for loading numba).
* :mod:`.cseg`: compressed_segmentation decoding of a chunk's region, straight into a cutout.
* :mod:`.cseg_encode`: compressed_segmentation encoding of a chunk's channel (the reference
  encoder's bytes).
* :mod:`.downsample`: block reductions for pyramids (average, mode, min, max), and plain raw
  chunk files read (``pread``) and averaged into a mip in one call.
* :mod:`.spans`: plain raw chunks read (``pread``) and copied into a cutout in one call.
* :mod:`.jit`: how they are compiled (GIL released, cached on disk where possible).
* :mod:`.scratch`: the per-thread buffers they, the stores and the decoders fill (no numba).

The package imports nothing from bigarrays (its modules import only each other, numpy and
numba), so it sits below every layer and any layer may use it. Importing the package imports
nothing: numba is loaded only when a kernel is first needed.
"""

__all__: list[str] = []
