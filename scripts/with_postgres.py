"""Run a command with DATABASE_URL pointing at a real PostgreSQL server.

Order of preference:
1. ``DATABASE_URL`` already set to a postgres URL -> used as is.
2. A server answering on 127.0.0.1:5432 (development and CI machines) -> ``postgres`` user,
   trust auth.
3. Otherwise a throwaway server is started from the PostgreSQL binaries (initdb + pg_ctl) in a
   temporary directory on a free port, and stopped afterwards. Nothing is skipped: with no server
   and no binaries this fails, so CI can never silently skip the PostgreSQL run.

Usage: python scripts/with_postgres.py [--throwaway] COMMAND [ARGS...]
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

DB_NAME = "spinewatch"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if not found:
        sys.exit(
            "with_postgres: no PostgreSQL server on 127.0.0.1:5432 "
            f"and no '{name}' binary to start one"
        )
    return found


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _throwaway(command: list[str]) -> int:
    tmp = tempfile.mkdtemp(prefix="spinewatch-pg-")
    os.chmod(tmp, 0o777)
    data = os.path.join(tmp, "data")
    port = _free_port()
    run = lambda cmd: subprocess.run(_as_postgres_user(cmd), check=True, capture_output=True)  # noqa: E731
    try:
        run([_pg_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        run(
            [
                _pg_bin("pg_ctl"),
                "-D",
                data,
                "-w",
                "-l",
                os.path.join(tmp, "log"),
                "-o",
                f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start",
            ]
        )
        for _ in range(50):
            if _port_open("127.0.0.1", port):
                break
            time.sleep(0.1)
        env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/{DB_NAME}")
        print(f"with_postgres: throwaway server on port {port}", file=sys.stderr)
        return subprocess.call(command, env=env)
    finally:
        subprocess.run(
            _as_postgres_user([_pg_bin("pg_ctl"), "-D", data, "-m", "fast", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str]) -> int:
    throwaway = False
    if argv and argv[0] == "--throwaway":
        throwaway, argv = True, argv[1:]
    if not argv:
        sys.exit(__doc__)
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")) and not throwaway:
        return subprocess.call(argv)
    if not throwaway and _port_open("127.0.0.1", 5432):
        env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
        return subprocess.call(argv, env=env)
    return _throwaway(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
