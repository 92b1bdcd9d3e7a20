"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012): a low-pass filter whose
cutoff rises with the signal's speed, so a still signal loses its jitter and a moving one
keeps up with little lag.

For each sample x at time t (seconds), with dt the time since the previous one:

    alpha(fc)  = 1 / (1 + 1 / (2 pi fc dt))          smoothing factor of a cutoff fc (Hz)
    speed      = (x - previous raw x) / dt,          low-passed at DERIVATIVE_CUTOFF_HZ
    fc         = min_cutoff + beta * |smoothed speed|
    y          = y_prev + alpha(fc) * (x - y_prev)

A first-order low pass trails a signal moving at v px/s by v / (2 pi fc) px once settled,
so with fc = min_cutoff + beta * v the lag is v / (2 pi (min_cutoff + beta v)), below
1 / (2 pi beta) px at any constant speed (0.8 px for beta = 0.2). The speed is taken from
the raw samples (the paper differentiates against the filtered one): on a still face it is
then only the jitter's, which the derivative filter mostly cancels, so the cutoff stays
low there. Time comes from the frames' timestamps, so a variable frame rate
or a skipped frame is filtered by its real interval.

Defaults (the track stage's options give min_cutoff and beta): min_cutoff 0.3 Hz, beta 0.2
per px/s, derivative cutoff 0.5 Hz (a slow speed estimate keeps the jitter out of the cutoff:
on a still face with +-2 px noise it stays near 0.9 Hz; it only delays how soon a face that
starts moving is followed, ~0.5 s to under 1 px, not the lag once it moves). With +-2 px
landmark noise this cuts the frame-to-frame change of a still face's landmarks ~7x at 30 fps
(~6x at 24, ~12x at 60), and a face moving at any constant speed trails by under 0.85 px
(tests/unit/test_faces_tracking.py).
"""

from __future__ import annotations

import math

import numpy as np

DERIVATIVE_CUTOFF_HZ = 0.5
"""Cutoff, in Hz, of the low pass applied to the speed estimate (see the module docstring)."""

FALLBACK_DT_S = 1.0 / 30.0
"""Interval assumed when two samples have the same (or no increasing) time."""


def alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low pass with this cutoff, for a sample interval dt."""
    tau = 1.0 / (2.0 * math.pi * np.maximum(cutoff_hz, 1e-6))
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """One Euro filter of a vector of coordinates (each filtered on its own, in pixels).

    min_cutoff: Hz, the cutoff of a still signal (lower: steadier, slower to follow);
    beta: Hz per px/s, how much the cutoff rises with speed (higher: less lag).
    The first sample passes unchanged and starts the filter.
    """

    def __init__(self, min_cutoff: float = 0.3, beta: float = 0.2,
                 derivative_cutoff: float = DERIVATIVE_CUTOFF_HZ) -> None:
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.derivative_cutoff = float(derivative_cutoff)
        self.t: float | None = None
        self.raw: np.ndarray | None = None
        self.value: np.ndarray | None = None
        self.speed: np.ndarray | None = None

    def __call__(self, x: np.ndarray, t_s: float) -> np.ndarray:
        """The filtered value of sample x (float array) taken at t_s seconds."""
        x = np.asarray(x, np.float64)
        if self.value is None or self.raw is None or self.t is None:
            self.t, self.raw, self.value, self.speed = t_s, x.copy(), x.copy(), np.zeros_like(x)
            return x.copy()
        dt = t_s - self.t if t_s > self.t else FALLBACK_DT_S
        speed = (x - self.raw) / dt
        a_d = alpha(self.derivative_cutoff, dt)
        self.speed = self.speed + a_d * (speed - self.speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed)
        self.value = self.value + alpha(cutoff, dt) * (x - self.value)
        self.t, self.raw = t_s, x.copy()
        return self.value.copy()
