"""Numpy signal front ends shared by training, calibration, validation and the runtime."""
