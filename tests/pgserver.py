"""A real PostgreSQL server for the tests: started in a temporary folder on a free loopback port, stopped after.

`initdb` refuses to run as root, so as root (CI) every server command runs as the `postgres` user in a folder
it owns. The bot's role, `fluxbot`, logs in with a password over TCP (scram-sha-256), so the URLs the tests
use carry a real password and a wrong one is refused; the `postgres` superuser, which the fixtures use to make
databases, is trusted on loopback. Each test gets its own database, copied from a migrated template.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import asyncpg

ROLE = "fluxbot"
PASSWORD = "pg-password-Zq7x9"  # a test server's; the scrubbing tests look for it
TEMPLATE = "fluxbot_template"
INSTALL_HINT = "PostgreSQL's server binaries are missing: install them with `apt-get install -y postgresql`"


class ServerMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_binaries(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The newest installed version's bin folder (the one with initdb)."""
    found = [d / "bin" for d in root.glob("*") if (d / "bin" / "initdb").is_file()] if root.is_dir() else []
    if not found:
        raise ServerMissing(f"{INSTALL_HINT} (no {root}/*/bin/initdb)")
    return max(found, key=lambda b: _version(b.parent.name))


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdecimal())


def _memory_folder(path: str = "/dev/shm", room: int = 1 << 30) -> str | None:
    """A RAM-backed folder when there is ample room (copying a database there takes ~7 ms, not ~100 ms)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return path if usage.free >= room and os.access(path, os.W_OK) else None


def free_port() -> int:
    """A TCP port nothing listens on right now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL server in a temporary folder; `start()` it, `stop()` it (which removes the folder)."""

    def __init__(self) -> None:
        self.bin = find_binaries()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fluxbot-pg-", dir=_memory_folder()))
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._names = itertools.count(1)
        self._running = False

    def url(self, database: str, *, password: str = PASSWORD, port: int | None = None) -> str:
        """The DATABASE_URL of one database, as the bot's role."""
        return f"postgresql://{ROLE}:{password}@127.0.0.1:{port or self.port}/{database}"

    def start(self) -> None:
        """initdb, configure, start and wait until it accepts connections."""
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        data, log = self.dir / "data", self.dir / "server.log"
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
        hba = (
            "local all postgres trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        self._write(data / "pg_hba.conf", hba, append=False)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "16MB",
            "max_connections": "200",
        }
        self._write(data / "postgresql.conf", "".join(f"{k} = {v}\n" for k, v in settings.items()), append=True)
        self._run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "start")
        self._running = True

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        try:
            if self._running:
                self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
                self._running = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for a failure message."""
        path = self.dir / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    async def admin(self, database: str = "postgres") -> asyncpg.Connection:
        """A superuser connection (trusted on loopback, no password)."""
        return await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres", database=database)

    async def prepare(self) -> None:
        """Create the bot's role and the migrated template every test's database is copied from."""
        from fluxbot.storage.postgres import PostgresStore  # the store migrates the template: its own code

        admin = await self.admin()
        try:
            await admin.execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'")
            await admin.execute(f"CREATE DATABASE {TEMPLATE} OWNER {ROLE}")
            store = await PostgresStore.open(self.url(TEMPLATE), instance="template")
            await store.close()
            await admin.execute(f"ALTER DATABASE {TEMPLATE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
        finally:
            await admin.close()

    async def create_database(self, *, migrated: bool = True) -> str:
        """A new database of the bot's role (a copy of the migrated template, or empty); its name."""
        name = f"t_{os.getpid()}_{next(self._names)}"
        admin = await self.admin()
        try:
            template = TEMPLATE if migrated else "template0"
            await admin.execute(f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE {template} STRATEGY FILE_COPY")
        finally:
            await admin.close()
        return name

    async def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still on it."""
        admin = await self.admin()
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_postgres, str(self.bin / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr or done.stdout}\n{self.log_tail()}")

    @staticmethod
    def _write(path: Path, text: str, *, append: bool) -> None:
        # Writing into the existing file keeps its owner (the server's user) even when root writes.
        with path.open("a" if append else "w") as f:
            f.write(text)
