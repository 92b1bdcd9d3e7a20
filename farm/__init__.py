"""farm: a distributed render farm for face-swapped video."""

__version__ = "0.1.0"
