"""Control plane: the job database (tables, one-transaction state changes, states as enums)."""
