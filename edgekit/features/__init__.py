"""Numpy signal front ends shared by training, calibration, validation and the runtime."""


def same_but_singletons(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """True when two shapes differ only by dimensions of size 1 (a reshape is then safe)."""
    return tuple(d for d in a if d != 1) == tuple(d for d in b if d != 1)
