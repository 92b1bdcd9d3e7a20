"""farm.memory: freed heap goes back to the system between tasks (glibc malloc_trim)."""

from __future__ import annotations

import ctypes
import sys

import psutil
import pytest

from farm import memory

MIB = 1 << 20


@pytest.mark.skipif(memory._libc() is None, reason="needs glibc's malloc_trim")
def test_freed_heap_below_a_live_block_is_given_back():
    """64 MiB of 4 KiB blocks freed under one block still in use: glibc keeps them in the
    process's RSS (the top of its heap is not free) until release_memory trims it."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    me = psutil.Process()
    blocks = [libc.malloc(4096) for _ in range(16384)]
    for b in blocks:
        ctypes.memset(b, 1, 4096)   # touched: in RSS
    keep = libc.malloc(4096)
    for b in blocks:
        libc.free(b)
    held = me.memory_info().rss
    assert memory.release_memory() is True
    assert held - me.memory_info().rss > 32 * MIB
    libc.free(keep)


def test_a_client_done_with_its_submit_forgets_the_model_packs(monkeypatch):
    from farm.models import packs

    cleared = []
    monkeypatch.setattr(packs, "clear_pack_cache", lambda: cleared.append(True))
    memory.release_memory()
    assert not cleared
    memory.release_memory(drop_model_packs=True)
    assert cleared == [True] and "farm.models.packs" in sys.modules
