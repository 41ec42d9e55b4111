"""Crash-safety tests: datasets stay readable when their writer is killed mid-write."""
