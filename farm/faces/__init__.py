"""The face pipeline: detect, select, align, swap, enhance, paste back (see chain.py)."""
