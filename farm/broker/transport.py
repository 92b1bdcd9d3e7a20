"""What the farm knows about its broker (Redis, kombu's transport), in one place.

The broker only carries work; the database is the truth about jobs. This module makes
the clients (short timeouts, no silent retries), and reads what kombu's Redis transport
keeps: one list per queue and priority step (`gpu`, `gpu:1` ... `gpu:9`) and the
`unacked` hash of messages delivered to a worker and not yet acknowledged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from farm.broker.celery_app import QUEUE_CPU, QUEUE_GPU, celery_config
from farm.config import Settings
from farm.errors import UnavailableError

UNACKED_KEY = "unacked"
"""kombu's Redis hash of messages delivered to workers and not yet acknowledged."""

CLIENT_TIMEOUT_S = 5.0
"""Connect and read timeout of a farm client, seconds: a dead broker fails fast."""

QUEUES = (QUEUE_GPU, QUEUE_CPU)


def client(settings: Settings, timeout_s: float = CLIENT_TIMEOUT_S) -> redis.Redis:
    """A client that fails at once when Redis is down (redis-py retries with backoff by default)."""
    options = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s, "retry": Retry(NoBackoff(), 0)}
    if settings.embedded_broker:
        return redis.Redis(unix_socket_path=str(settings.redis_socket), **options)
    return redis.Redis.from_url(settings.broker, **options)


def alive(settings: Settings) -> bool:
    try:
        return bool(client(settings).ping())
    except (redis.RedisError, OSError):
        return False


def require(settings: Settings) -> None:
    """Raise UnavailableError (exit 4) naming the broker (password masked) unless it answers."""
    try:
        client(settings).ping()
    except redis.AuthenticationError as exc:
        raise UnavailableError(f"the broker {settings.broker_shown} refused the credentials: {exc}",
                               hint="check the password in FARM_BROKER_URL") from None
    except (redis.RedisError, OSError) as exc:
        raise UnavailableError(f"the broker {settings.broker_shown} does not answer: {exc}",
                               hint="start it (`farm up` for the local farm) or check FARM_BROKER_URL") from None


def _transport(settings: Settings) -> dict[str, Any]:
    return celery_config(settings)["broker_transport_options"]


def queue_keys(queue: str, transport: dict[str, Any]) -> list[str]:
    """The Redis lists of one Celery queue: kombu puts priority p on `<queue><sep><p>` (p=0: `<queue>`)."""
    sep = transport.get("sep", "\x06\x16")
    steps = transport.get("priority_steps", [0, 3, 6, 9])
    prefix = transport.get("global_keyprefix", "")
    return [prefix + (f"{queue}{sep}{p}" if p else queue) for p in steps]


def depths(conn: redis.Redis, settings: Settings, queues: Iterable[str] = QUEUES) -> tuple[dict[str, int], int]:
    """({queue: messages waiting, all priorities}, unacked messages), in one round trip."""
    transport = _transport(settings)
    queues = list(queues)
    keys = {q: queue_keys(q, transport) for q in queues}
    pipe = conn.pipeline(transaction=False)
    for q in queues:
        for key in keys[q]:
            pipe.llen(key)
    pipe.hlen(transport.get("global_keyprefix", "") + UNACKED_KEY)
    results = iter(pipe.execute())
    waiting = {q: sum(next(results) for _ in keys[q]) for q in queues}
    return waiting, int(next(results))


def _task_of(raw: bytes | str) -> tuple[str, tuple[Any, ...]] | None:
    """(task name, args) of one kombu message (a queue entry, or an unacked [message, exchange, key])."""
    try:
        message = json.loads(raw)
        if isinstance(message, list):
            message = message[0]
        task = message["headers"]["task"]
        args = json.loads(base64.b64decode(message["body"]))[0]
        return task, tuple(args)
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def holdings(conn: redis.Redis, settings: Settings) -> set[tuple[str, tuple[Any, ...]]]:
    """(task name, args) of every farm message waiting in a queue or held by a worker."""
    transport = _transport(settings)
    raws = [raw for queue in QUEUES for key in queue_keys(queue, transport) for raw in conn.lrange(key, 0, -1)]
    raws += conn.hvals(transport.get("global_keyprefix", "") + UNACKED_KEY)
    return {found for found in map(_task_of, raws) if found}
