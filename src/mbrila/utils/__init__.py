"""Shared helpers: constrained parameters and small linear-algebra utilities."""
