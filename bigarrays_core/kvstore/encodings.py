"""How stores record content encodings, and the one name each is reported by.

CloudVolume (through cloud-files) stores values compressed with gzip, zstd, brotli, xz or
bzip2 and records which as a file suffix on local disk (``.gz``, ``.zstd``, ``.br``,
``.xz``, ``.bz2``) and as ``Content-Encoding`` on object stores (``gzip``, ``zstd``, ``br``,
``xz``; ``bz2`` on GCS, ``bzip2`` on S3). Every store reports what it recorded for a value
(:attr:`~bigarrays_core.kvstore.base.Value.encoding`) by one of the names in
:data:`ENCODING_OF_SUFFIX`, so the codec layer decodes by name, never by guessing.

This module imports nothing from bigarrays.
"""

from __future__ import annotations

__all__ = ["ENCODING_OF_SUFFIX", "FOREIGN_SUFFIXES", "PRIMARY_SUFFIXES", "encoding_of_header"]

#: The content encoding each of CloudVolume's file suffixes records.
ENCODING_OF_SUFFIX: dict[str, str] = {".gz": "gzip", ".zstd": "zstd", ".br": "br", ".xz": "xz", ".bz2": "bz2"}
#: The suffixes bigarrays writes (gzip, zstd): looked for on every read.
PRIMARY_SUFFIXES = (".gz", ".zstd")
#: CloudVolume's other suffixes: looked for only when neither the plain key nor a primary
#: variant exists (bigarrays never writes them, so they cannot be stale beside its own).
FOREIGN_SUFFIXES = (".br", ".xz", ".bz2")

# Other names the same encodings go by in headers.
_ALIASES = {"x-gzip": "gzip", "bzip2": "bz2", "x-bzip2": "bz2", "lzma": "xz", "x-xz": "xz"}
# Tokens that say nothing about the stored bytes: ``aws-chunked`` describes only how an
# upload was framed on the wire (S3 may keep it in the header), ``identity`` means none.
_NO_CODING = frozenset({"", "identity", "aws-chunked"})


def encoding_of_header(value: str | None) -> str | None:
    """The content encoding a ``Content-Encoding`` header value records, by the name stores
    report (``"gzip"``, ``"zstd"``, ``"br"``, ``"xz"``, ``"bz2"``), or None for no encoding.

    Case and aliases are normalised (``x-gzip``, ``bzip2``); ``identity`` and ``aws-chunked``
    are dropped. Several remaining codings are returned joined by ``", "`` in the order
    applied, which no decoder accepts: an error, never a guess.
    """
    if not value:
        return None
    tokens = [t.strip().lower() for t in value.split(",")]
    codings = [_ALIASES.get(t, t) for t in tokens if t not in _NO_CODING]
    return ", ".join(codings) if codings else None
