"""What a connector had safely in JetStream, kept on disk so a kill -9 loses nothing.

For each connection: where its current venue connection began in the journal (`open`,
the derivation must restart there to rebuild its books) and the newest journal line
whose records JetStream acked. After a crash the connector re-derives from `open` and
publishes what lies past `acked`; the few records acked after the last save are sent
again and deduplicated by their Msg-Id. A clean stop removes the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from ssmd.capture.journal_format import JournalError


class Mark(msgspec.Struct, kw_only=True):
    open_key: str
    """Journal key (relative to the data dir) of the segment holding the `open` line."""
    open_line: int
    acked_key: str = ""
    acked_line: int = -1


class Checkpoint(msgspec.Struct, kw_only=True):
    links: dict[int, Mark] = {}


def checkpoint_path(root: Path, env: str, feed: str, shard: int) -> Path:
    return root / "state" / env / feed / f"connector-{shard}.json"


def load(path: Path) -> Checkpoint | None:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Checkpoint)
    except FileNotFoundError:
        return None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"unreadable connector checkpoint {path}: {exc}") from None


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Atomically (tmp + rename): a crash leaves the old file or the new one. A disk
    that cannot take it stops the connector like the journal does (JournalError)."""
    tmp = path.with_suffix(".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as fh:
            fh.write(msgspec.json.encode(checkpoint))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except OSError as exc:
        raise JournalError(tmp, exc.errno, f"cannot write the checkpoint ({exc.strerror})") from exc


def clear(path: Path) -> None:
    path.unlink(missing_ok=True)
