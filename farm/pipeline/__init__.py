"""The per-frame pipeline: a chain of stages with one small contract (see stage.py)."""
