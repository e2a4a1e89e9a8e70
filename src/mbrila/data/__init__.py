"""Reading recordings from disk, and the shipped V1/V2 demo data."""

from mbrila.data.io import demo_data_path, load_data, load_regions

__all__ = ["demo_data_path", "load_data", "load_regions"]
