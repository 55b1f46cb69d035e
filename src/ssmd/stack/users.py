"""Running a server as an unprivileged system user when we are root.

Postgres refuses to run as root (initdb and postgres both abort). Containers and CI
often run as root, so we drop to a dedicated user: create it if missing, hand it its data
directory, and let it traverse (only traverse, not list) the directories above.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

DEFAULT_USER = "ssmd-pg"


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_user(name: str = DEFAULT_USER) -> tuple[int, int]:
    """(uid, gid) of system user `name`, created with useradd if it does not exist."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        proc = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
        )
        try:  # a concurrent session may have created it first; that is fine
            entry = pwd.getpwnam(name)
        except KeyError:
            raise PermissionError(
                f"could not create system user {name!r} for Postgres: "
                f"{proc.stderr.strip() or proc.returncode}"
            ) from None
    return entry.pw_uid, entry.pw_gid


def make_traversable(path: Path) -> None:
    """Add o+x to every ancestor of `path` that lacks it, so another user can reach it."""
    for parent in Path(path).resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give `path` and everything below it to uid:gid (skips work if already theirs)."""
    if path.stat().st_uid == uid and path.stat().st_gid == gid:
        return
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
