"""Inference: the pure-function Kalman and dense-GP cores, and the engines built on them.

======================  ==============================================  ==========================================
engine                  latent posterior                                models
======================  ==============================================  ==========================================
``ExactEMEngine``       dense GP, exact Gaussian conditioning           DLAG (default), GPFA (``engine="exact"``)
``KalmanEMEngine``      Kalman smoother on the lifted GP / LDS          DLAG-SSM, GPFA-SSM, ADM, LDS
``VEMARDEngine``        dense GP (variational, ARD read-out)            MDLAG ``engine="time"``
``VEMARDFreqEngine``    circulant GP in the frequency domain            MDLAG ``engine="freq"``
``VEMKalmanARDEngine``  Kalman smoother, information-form read-out      MDLAG ``engine="kalman"``
======================  ==============================================  ==========================================
"""

from mbrila.inference.em import EMEngine
from mbrila.inference.exact_em import ExactEMEngine
from mbrila.inference.kalman_em import KalmanEMEngine
from mbrila.inference.vem_ard import VEMARDEngine, VEMKalmanARDEngine
from mbrila.inference.vem_ard_freq import VEMARDFreqEngine

__all__ = [
    "EMEngine",
    "ExactEMEngine",
    "KalmanEMEngine",
    "VEMARDEngine",
    "VEMARDFreqEngine",
    "VEMKalmanARDEngine",
]
