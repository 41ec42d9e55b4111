"""bigarrays_server: the FastAPI REST cutout server over bigarrays_core (docs/server.md).

``create_app(settings)`` builds the app (``bigarrays_server.app:create_app`` is the
uvicorn factory); ``run(datasets, ...)`` serves it (``bigarrays serve``). Routes, formats
and limits are described in docs/server.md.
"""

from bigarrays_server.app import create_app
from bigarrays_server.runner import run
from bigarrays_server.settings import Settings

__all__ = ["Settings", "create_app", "run"]
