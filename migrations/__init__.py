"""Alembic migrations for the farm's job database (applied by `farm db upgrade` or on start)."""
