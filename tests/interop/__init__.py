"""Interoperability tests: bigarrays against TensorStore and CloudVolume on local directories."""
