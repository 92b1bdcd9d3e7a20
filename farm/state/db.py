"""SQLAlchemy tables for jobs, chunks and events, the engine, and schema upgrades.

The same code runs on SQLite (embedded default) and PostgreSQL (cluster). On SQLite
every write transaction starts with BEGIN IMMEDIATE, so two processes that claim
the same row serialise instead of deadlocking; on PostgreSQL rows are locked with
SELECT ... FOR UPDATE (store.lock_job, store.lock_chunk).
"""

from __future__ import annotations

import datetime as dt
import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, create_engine, event)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from farm.errors import UnavailableError


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    input_path: Mapped[str] = mapped_column(Text)          # what the user gave (never written)
    source_path: Mapped[str] = mapped_column(Text)         # the ingested copy on storage
    output_path: Mapped[str] = mapped_column(Text)
    overwrite: Mapped[bool] = mapped_column(Boolean, default=False)
    keep_chunks: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # face stage options
    encoder: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # EncoderSettings
    models: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)    # pack label
    frames_total: Mapped[int] = mapped_column(Integer)
    fps: Mapped[float] = mapped_column(Float, default=0.0)
    chunk_count: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    finalize_owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    finalize_claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    consent: Mapped[str | None] = mapped_column(Text, nullable=True)      # --consent: a release form, ticket or hash
    provenance: Mapped[str | None] = mapped_column(Text, nullable=True)   # what finalize signed (farm.provenance)
    batch_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)   # farm.state.batches
    api_token_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)  # API client; None: local


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("job_id", "index", name="uq_chunk_job_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    first_frame: Mapped[int] = mapped_column(Integer)
    frames_planned: Mapped[int] = mapped_column(Integer)
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)     # ChunkPlan as a dict
    input_path: Mapped[str] = mapped_column(Text)
    output_path: Mapped[str] = mapped_column(Text)
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # handed to the broker
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    frames_changed: Mapped[int | None] = mapped_column(Integer, nullable=True)   # frames with a face replaced
    faces_changed: Mapped[int | None] = mapped_column(Integer, nullable=True)    # faces replaced in them
    people_changed: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)   # --map: frames per mapping


class Event(Base):
    """An append-only log of what happened to a job (attempts, failures, publishes)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    chunk_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")


class WorkerRow(Base):
    """A worker process as it last reported itself (for `farm status`, metrics, bad-GPU quarantine)."""

    __tablename__ = "workers"

    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer, default=0)
    gpu: Mapped[str | None] = mapped_column(String(64), nullable=True)     # CUDA_VISIBLE_DEVICES
    providers: Mapped[str] = mapped_column(String(255), default="")         # in use, e.g. "CPUExecutionProvider"
    state: Mapped[str] = mapped_column(String(16), default="idle")          # idle | busy | quarantined | stopped
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    chunk_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fps: Mapped[float] = mapped_column(Float, default=0.0)                  # of the last chunk
    frames_total: Mapped[int] = mapped_column(BigInteger, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class ApiToken(Base):
    """A bearer token of the HTTP API; only its sha256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class IdempotencyKey(Base):
    """One API request key -> the job it created, so a CI retry does not start a second render."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class OutputClaim(Base):
    """An output path on storage that an API token wrote (or is writing): only that token
    may name it again, so no client writes over another's output (farm.api.outputs)."""

    __tablename__ = "output_claims"

    path_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)   # of the real path
    path: Mapped[str] = mapped_column(Text)
    token_id: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)    # the latest job writing it
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Batch(Base):
    """Many targets submitted in one command or request (farm.state.batches); its items are jobs."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)   # the checked options, as asked
    root: Mapped[str] = mapped_column(Text)                                # the targets as given
    output_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class BatchItem(Base):
    """One target of a batch: the job rendering it, or why it has none (refused, skipped)."""

    __tablename__ = "batch_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    input_path: Mapped[str] = mapped_column(Text)
    output_path: Mapped[str | None] = mapped_column(Text, nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))          # job | refused | resumed | skipped
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)   # resumed: the job that made it
    input_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    options_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)   # refused: why; skipped: the reason
    image_id: Mapped[int | None] = mapped_column(Integer, nullable=True)   # an image item: its JobImage


class JobImage(Base):
    """One image of an images job (farm.jobs.image_batch): its chunk and its own result."""

    __tablename__ = "job_images"
    __table_args__ = (Index("ix_job_images_job_chunk", "job_id", "chunk_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    chunk_index: Mapped[int] = mapped_column(Integer)
    input_path: Mapped[str] = mapped_column(Text)
    output_path: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))          # pending | done | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    faces_changed: Mapped[int | None] = mapped_column(Integer, nullable=True)


CONNECT_TIMEOUT_S = 10
"""How long a PostgreSQL connection attempt may take before the database counts as unreachable."""


def connect_error(url: str, exc: BaseException) -> UnavailableError:
    """The message for a database that cannot be opened: which one (password masked), what the
    driver said (its first line, e.g. 'FATAL: role "x" does not exist'), and what to check."""
    from farm.config import redact_url

    said = " ".join(str(getattr(exc, "orig", None) or exc).splitlines()[0].split())
    said = said.removeprefix("connection failed: ")
    if url.startswith("sqlite"):
        hint = ("the database file's folder must exist or be creatable, and be writable; or point "
                "FARM_DATABASE_URL (database_url in farm.toml) or FARM_HOME elsewhere")
    else:
        hint = ("check FARM_DATABASE_URL (or database_url in farm.toml): host, port, database name, "
                "user and password, and that the server is running")
    return UnavailableError(f"cannot open the job database {redact_url(url)}: {said}", hint=hint)


def _translate_connect_errors(engine: Engine, url: str) -> None:
    """A failure to connect at all (server down, unknown database or role, unopenable file)
    becomes UnavailableError (exit 4) at this boundary; errors of a live connection stay
    SQLAlchemy's, for the callers that handle them (e.g. a busy SQLite)."""

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        if ctx.connection is None and isinstance(ctx.sqlalchemy_exception, OperationalError):
            raise connect_error(url, ctx.original_exception) from None


def make_engine(url: str) -> Engine:
    """An engine with the per-dialect settings the farm relies on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                why = "is not a folder" if isinstance(exc, (FileExistsError, NotADirectoryError)) else \
                    f"cannot be created ({exc.strerror})"
                raise connect_error(url, OSError(f"its folder {Path(path).parent} {why}")) from None
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        _translate_connect_errors(engine, url)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None   # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL + NORMAL: a commit is atomic and the file never corrupts; only the last
            # commits before an OS crash or power cut can roll back (a chunk then runs again,
            # which every task tolerates). FULL fsyncs every commit: ~2x the cost per chunk.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    given = url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url, pool_pre_ping=True,
                           connect_args={"connect_timeout": CONNECT_TIMEOUT_S} if "postgresql" in url else {})
    _translate_connect_errors(engine, given)
    return engine


class Database:
    """An engine plus a session factory; `transaction()` is the unit of every state change."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        try:
            with self.sessions.begin() as session:
                yield session
        except OperationalError as exc:
            raise UnavailableError(f"job database {self.safe_url} failed: {exc.orig}",
                                   hint="check FARM_DATABASE_URL and that the server is running") from None

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


def migrations_dir() -> Path:
    """The Alembic script folder (the top-level migrations/ folder, installed as farm.migrations)."""
    import farm.migrations  # noqa: PLC0415  (only schema upgrades need it)

    return Path(farm.migrations.__file__).parent


SCHEMA_HEAD = "0010"
"""The newest migration in migrations/versions (a test checks it against Alembic's head).
Every command checks the schema on start; comparing with this constant is one read and
spares importing Alembic (~0.3 s) when the schema is current."""


def upgrade_schema(db: Database) -> str:
    """Apply pending Alembic migrations under a lock; return the head revision."""
    try:
        if _stored_revision(db) == SCHEMA_HEAD:   # the common case: a read, no write lock taken
            return SCHEMA_HEAD
    except OperationalError:
        pass                                       # no database yet, or busy: take the slow path
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", db.url)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    try:
        if head and current_revision(db) == head:
            return head
    except OperationalError:
        pass
    with _schema_lock(db):
        try:
            with db.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise UnavailableError(f"cannot upgrade the job database {db.safe_url}: {exc.orig}") from None
    return current_revision(db) or ""


def _stored_revision(db: Database) -> str | None:
    """alembic_version's row, read with plain SQL (None when the table is missing or empty)."""
    from sqlalchemy import inspect, text

    with db.engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _schema_lock(db: Database) -> Iterator[None]:
    """Only one process migrates at a time (file lock on SQLite, advisory lock on PostgreSQL)."""
    if db.engine.dialect.name == "sqlite":
        path = db.engine.url.database
        if not path or path == ":memory:":
            yield
            return
        with open(f"{path}.migrate.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        try:
            yield
        finally:
            conn.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
            conn.commit()
