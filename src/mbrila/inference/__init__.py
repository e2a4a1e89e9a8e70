"""Inference: the pure-function Kalman and dense-GP cores, and the engines built on them.

======================  ==============================================  ==========================================
engine                  latent posterior                                models
======================  ==============================================  ==========================================
``ExactEMEngine``       dense GP, exact Gaussian conditioning           DLAG (default), GPFA (``engine="exact"``)
``KalmanEMEngine``      Kalman smoother on the lifted GP / LDS          DLAG-SSM, GPFA-SSM, ADM, LDS
``VEMARDEngine``        dense GP (variational, ARD read-out)            MDLAG ``engine="time"``
``VEMARDFreqEngine``    circulant GP in the frequency domain            MDLAG ``engine="freq"``
``VEMKalmanARDEngine``  Kalman smoother, information-form read-out      MDLAG ``engine="kalman"``
``LaplaceEMEngine``     Laplace (Newton on the Kalman smoother)         Poisson GPFA, DLAG-SSM, ADM, LDS
======================  ==============================================  ==========================================
"""

from mbrila.inference.em import EMEngine
from mbrila.inference.exact_em import ExactEMEngine
from mbrila.inference.kalman_em import KalmanEMEngine
from mbrila.inference.laplace_em import LaplaceEMEngine
from mbrila.inference.vem_ard import VEMARDEngine, VEMKalmanARDEngine
from mbrila.inference.vem_ard_freq import VEMARDFreqEngine

__all__ = [
    "EMEngine",
    "ExactEMEngine",
    "KalmanEMEngine",
    "LaplaceEMEngine",
    "VEMARDEngine",
    "VEMARDFreqEngine",
    "VEMKalmanARDEngine",
]
