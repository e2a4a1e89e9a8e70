"""Frequency-domain helpers for the circulant (fast-mDLAG) engine: unitary FFTs, frequencies, delayed spectra."""

from mbrila.frequency.circulant import (
    angular_frequencies,
    delay_phases,
    expected_log_density,
    prior_quadratic,
    rank_one_plus_identity,
    unitary_fft,
    unitary_ifft,
)

__all__ = [
    "angular_frequencies",
    "delay_phases",
    "expected_log_density",
    "prior_quadratic",
    "rank_one_plus_identity",
    "unitary_fft",
    "unitary_ifft",
]
