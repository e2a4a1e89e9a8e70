"""Frequency-domain helpers for the circulant (fast-mDLAG) engine: unitary FFTs, frequencies, delay operators."""

from mbrila.frequency.circulant import angular_frequencies, delay_operator, unitary_fft, unitary_ifft

__all__ = ["angular_frequencies", "delay_operator", "unitary_fft", "unitary_ifft"]
