"""Acceptance tests of the core library (issue 2); a package so its helpers import relatively."""
