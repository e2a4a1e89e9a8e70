"""Inference: the pure-function Kalman core and the EM engines built on it."""
