"""CloudVolume (through cloud-files) pointed at the S3 and GCS stand-ins, and nowhere else.

How cloud-files is steered here (read from its source, cloud-files 6.4):

* **S3 at a custom endpoint.** CloudVolume's path grammar has no room for an endpoint
  (``s3://http://host/...`` is refused), but cloud-files resolves *aliases*:
  ``cloudfiles.paths.add_alias("name", "s3://http://127.0.0.1:PORT/")`` makes ``name://bucket/path``
  an S3 path at that endpoint (in this process only; nothing is written to ``aliases.json``).
  Its connection pool then reads credentials from ``<alias>-secret.json`` in
  ``cloudfiles.secrets.CLOUD_VOLUME_SECRETS_DIR`` (``$CLOUD_VOLUME_DIR/secrets``, read at import
  time, so the module attribute is patched). The environment fallback is unusable: it
  requires ``AWS_SESSION_TOKEN`` to be set.
* **GCS.** google-cloud-storage honours ``STORAGE_EMULATOR_HOST`` by itself; passing
  ``secrets=AnonymousCredentials()`` keeps it from looking for Google's default credentials.

:class:`CloudVolumeAccess` maps a bigarrays URL (``s3://bucket/path``, ``gs://bucket/path``) to
the CloudVolume path and secrets that reach the same objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudvolume import CloudVolume  # type: ignore[import-untyped]

__all__ = ["CloudVolumeAccess", "write_secrets"]


def write_secrets(secrets_dir: Path, alias: str, credentials: dict[str, str]) -> None:
    """Write cloud-files' S3 credentials file for ``alias`` (``<alias>-secret.json``)."""
    secrets_dir.mkdir(parents=True, exist_ok=True)
    (secrets_dir / f"{alias}-secret.json").write_text(json.dumps(credentials))


@dataclass(frozen=True)
class CloudVolumeAccess:
    """Opens CloudVolumes on the stand-ins.

    ``s3_alias`` is a cloud-files alias registered for the S3 stand-in's endpoint (with its
    secrets file in place); GCS goes through ``STORAGE_EMULATOR_HOST``.
    """

    s3_alias: str

    def path(self, url: str) -> str:
        """The CloudVolume path for a bigarrays ``s3://`` or ``gs://`` URL."""
        scheme, rest = url.split("://", 1)
        if scheme == "s3":
            return f"{self.s3_alias}://{rest}"
        if scheme == "gs":
            return url
        raise ValueError(f"CloudVolumeAccess.path: {url!r} is neither s3:// nor gs://")

    def open(self, url: str, **options: Any) -> CloudVolume:
        """CloudVolume at ``url``: no process pool, no progress bar, a missing chunk is an error."""
        from cloudvolume import CloudVolume

        kw: dict[str, Any] = {"progress": False, "parallel": 1, "fill_missing": False, **options}
        if url.startswith("gs://"):
            from google.auth.credentials import AnonymousCredentials

            kw.setdefault("secrets", AnonymousCredentials())  # type: ignore[no-untyped-call]
        return CloudVolume(self.path(url), **kw)
