"""Control plane, front end: the `farm` command (Typer + Rich) over the job service."""
