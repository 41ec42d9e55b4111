"""bigarrays_server: the FastAPI REST cutout server over bigarrays_core (DESIGN.md §4)."""
