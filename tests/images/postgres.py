"""A real PostgreSQL from Debian's `postgresql` package, run by the `postgres` system user on 127.0.0.1 and
a free port, with one password-protected role and database (the ones a manifest names)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.servers import free_port

SYSTEM_USER = "postgres"


@dataclass(frozen=True)
class Postgres:
    port: int
    socket_dir: Path
    bindir: Path

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Runs one statement as the superuser over the local socket; returns its unaligned rows."""
        done = _as_postgres([str(self.bindir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U",
                             SYSTEM_USER, "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement])
        return done.stdout.strip()


def _as_postgres(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(["runuser", "-u", SYSTEM_USER, "--", *command], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)[:200]} exited {done.returncode}: {done.stderr[-2000:]}")
    return done


@contextmanager
def postgres_server(user: str, password: str, database: str):
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise RuntimeError("no PostgreSQL here: apt-get install postgresql (scripts/images_check.sh does)")
    bindir = versions[-1].parent
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as `postgres`.
    home = Path(tempfile.mkdtemp(prefix="finegate-postgres-"))
    shutil.chown(home, SYSTEM_USER, SYSTEM_USER)
    data, port = home / "data", free_port()
    server = Postgres(port, home, bindir)
    try:
        # Local socket connections trust the system user; TCP ones need the role's password (as in a cluster).
        _as_postgres([str(bindir / "initdb"), "-D", str(data), "--auth-local=trust", "--auth-host=scram-sha-256",
                      "-U", SYSTEM_USER])
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-w", "start", "-o",
                      f"-c listen_addresses=127.0.0.1 -p {port} -k {home}"])
        try:
            quoted = password.replace("'", "''")
            server.sql(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{quoted}'")
            server.sql(f"CREATE DATABASE \"{database}\" OWNER \"{user}\"")
            yield server
        finally:
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(home, ignore_errors=True)
