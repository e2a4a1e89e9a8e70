"""Shared experiment runners behind the example CLIs and notebooks."""
