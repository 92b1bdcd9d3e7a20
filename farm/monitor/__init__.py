"""Watching the farm from outside: Flower and Prometheus metrics."""
