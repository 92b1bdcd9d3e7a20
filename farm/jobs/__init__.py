"""Control plane: the job service (submit, cancel, retry) that the CLI and the API both call."""
