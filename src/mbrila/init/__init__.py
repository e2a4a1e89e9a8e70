"""Initialisation recipes: factor analysis, multi-set CCA for shared latents, delay and timescale estimates."""

from mbrila.init.deflation import Deflation, deflate_across
from mbrila.init.factor_analysis import factor_analysis
from mbrila.init.multi_region import initialize_multi_region

__all__ = ["Deflation", "deflate_across", "factor_analysis", "initialize_multi_region"]
