"""Initialisation recipes: factor analysis, multi-set CCA for shared latents, delay and timescale estimates; checks
of training data that make a model ill-posed."""

from mbrila.init.checks import DataWarning, warn_ill_posed
from mbrila.init.deflation import Deflation, deflate_across
from mbrila.init.factor_analysis import factor_analysis
from mbrila.init.multi_region import initialize_multi_region

__all__ = ["DataWarning", "Deflation", "deflate_across", "factor_analysis", "initialize_multi_region", "warn_ill_posed"]
