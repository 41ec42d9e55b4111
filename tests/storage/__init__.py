"""Storage-layer tests (issue 3): key-value store conformance and fault injection; a package so
its helpers import relatively."""
