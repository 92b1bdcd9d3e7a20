"""How the farm's long-running processes end: at once, once their own shutdown is done.

A supervisor (children stopped, chunks released, workers reported) or a Celery worker
(pool stopped, tasks acked or released) has nothing left to do when its main function
returns; the interpreter's teardown of the broker, database and Celery modules they
load took another 0.7-1.3 s per process, paid at every `farm down` and worker restart.
"""

from __future__ import annotations

import logging
import os
import sys


def exit_now(code: int) -> None:
    """Flush the logs and the standard streams, then end the process with `code` (os._exit)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
