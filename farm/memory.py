"""A worker's heap: kept while it works, given back between pieces of work.

glibc keeps freed heap memory (4K frames, ~12 MiB each, decoded and encoded in other
threads) in its free lists and counts it in the process's RSS until `malloc_trim` returns
it; a worker that ran a 4K chunk stayed ~250 MiB above its idle size without it.

The other way round, inside a task: a worker process's heap was trimmed back to the system
after every large free (its trim threshold stayed at glibc's 128 KiB), so every image or
frame faulted its buffers in afresh: a 1080p image worker spent half its CPU in the kernel
(~6,000 page faults an image; 32 ms an image against 15 ms in a plain process).
`keep_heap_while_working` fixes the thresholds for the worker's life, from its first
images task on; release_memory still trims after each task. It is not set for video chunks:
once set, glibc no longer adapts its mmap threshold, and a 4K pass-through chunk measured
~2 s slower with it (bench_overhead, 3 runs a side, not conclusive on this noisy machine).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):   # not glibc (musl has no malloc_trim)
        return None
    return libc


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc mallopt parameters (malloc.h)
TRIM_THRESHOLD_BYTES = 256 << 20
"""Free memory at the top of the heap kept for reuse during a task (glibc trims above it)."""
MMAP_THRESHOLD_BYTES = 32 << 20
"""Allocations of at least this size get their own mapping (glibc's largest allowed value):
frames, 4K RGB included (~24 MiB), come from the heap and are reused, not mapped each time."""


def keep_heap_while_working() -> bool:
    """Set glibc's trim and mmap thresholds for this process (idempotent, two mallopt calls);
    True when set, False without glibc."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)) and \
        bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def release_memory(drop_model_packs: bool = False) -> bool:
    """Collect garbage, then hand the heap's free pages back (glibc `malloc_trim(0)`).

    drop_model_packs: forget the cached model packs and their sessions first (a client
    done with its submit: ~40 MiB of a face job's `farm submit --wait`).

    True when some memory was returned; False when none was or the C library has no
    malloc_trim. Costs a few ms: call it after a chunk or a submit, not per frame.

    What survives the collection is frozen (gc.freeze): a worker's imports and sessions
    live as long as it does, and a full collection over them cost ~42 ms a chunk (about 4%
    of a 1.2 s chunk in bench_scaling); later calls scan only what was made since."""
    if drop_model_packs and "farm.models.packs" in sys.modules:
        sys.modules["farm.models.packs"].clear_pack_cache()
    gc.collect()
    gc.freeze()
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
