"""Reading recordings from disk (pickle, ``.npz``, NWB spike times), and the shipped V1/V2 demo data."""

from mbrila.data.io import demo_data_path, load_data, load_regions
from mbrila.data.nwb import from_nwb

__all__ = ["demo_data_path", "from_nwb", "load_data", "load_regions"]
