"""The Neuroglancer precomputed format: info parsing, and info storage."""

from bigarrays_core.format.info import DTYPES, ENCODINGS, Info, Scale, create_info, default_compression, scale_key_for
from bigarrays_core.format.metadata_io import read_info, read_raw_info, write_info

__all__ = ["DTYPES", "ENCODINGS", "Info", "Scale", "create_info", "default_compression", "read_info", "read_raw_info",
           "scale_key_for", "write_info"]
