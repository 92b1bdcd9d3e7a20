"""The data plane: per-GPU Celery worker launch, supervision and the chunk runner."""
