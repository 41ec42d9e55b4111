"""The one place that reads the cloud SDKs' environment.

A store reads it once, when it is opened (:func:`read_cloud_env`), and hands the same snapshot
to everything that needs it: the fsspec filesystem it writes through
(:mod:`bigarrays_core.kvstore.filesystems`) and the obstore reader it reads through
(:mod:`bigarrays_core.kvstore.obstore_reads`). Both then agree on the endpoint, the region and
the credentials, however the environment changes later.

Variables (each SDK's standard ones):

* S3: ``AWS_ENDPOINT_URL_S3`` over ``AWS_ENDPOINT_URL``; ``AWS_REGION`` over
  ``AWS_DEFAULT_REGION`` (the precedence of the AWS CLI and SDKs; botocore itself reads only
  ``AWS_DEFAULT_REGION``, so the region is passed to it explicitly); ``AWS_ACCESS_KEY_ID``,
  ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``. Profiles, SSO and instance roles stay
  botocore's own business.
* GCS: ``STORAGE_EMULATOR_HOST`` (an emulator: anonymous unless a token is given),
  ``GOOGLE_APPLICATION_CREDENTIALS``.

This module imports nothing from bigarrays.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["CloudEnv", "read_cloud_env"]


@dataclass(frozen=True)
class CloudEnv:
    """A snapshot of the cloud SDKs' environment (None where a variable is unset or empty)."""

    s3_endpoint: str | None = None
    s3_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    gcs_emulator: str | None = None
    google_credentials: str | None = None

    @property
    def gcs_emulator_url(self) -> str | None:
        """``STORAGE_EMULATOR_HOST`` as a URL (``http://`` added to a bare ``host:port``)."""
        host = self.gcs_emulator
        if not host:
            return None
        return host if "://" in host else "http://" + host


def read_cloud_env(environ: Mapping[str, str] | None = None) -> CloudEnv:
    """The cloud SDKs' environment now (``environ`` defaults to ``os.environ``)."""
    env = os.environ if environ is None else environ

    def get(*names: str) -> str | None:
        for name in names:
            value = env.get(name)
            if value:
                return value
        return None

    return CloudEnv(
        s3_endpoint=get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        s3_region=get("AWS_REGION", "AWS_DEFAULT_REGION"),
        aws_access_key_id=get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=get("AWS_SESSION_TOKEN"),
        gcs_emulator=get("STORAGE_EMULATOR_HOST"),
        google_credentials=get("GOOGLE_APPLICATION_CREDENTIALS"),
    )
