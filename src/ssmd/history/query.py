"""History queries: DuckDB over the Parquet archive, merged with JetStream for the
hours the archive does not (fully) hold yet.

    h = History(store, "dev", "sim", nats_url=url, scope="unknown", cache=data_dir / "cache")
    h.trades("BTC-USD", t0, t1)                 # pyarrow Table, archive schema
    h.book_at("BTC-USD", t)                     # BookAt(known, bids, asks, …)
    h.bars("BTC-USD", t0, t1, 60 * 10**9)       # OHLCV

Seamless by construction: every record belongs to the hour of its `ts_recv`. An hour
with a `complete` coverage marker is read from the archive only; an hour without one
from the stream only; an hour whose marker is not complete (it had not ended when it
was reprocessed) from both, deduplicated by Nats-Msg-Id (the archive's copy wins).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from ssmd.bus.msgid import SeqScope, msg_id
from ssmd.history.layout import (
    HOUR_NS,
    Partition,
    feed_prefix,
    hour_ceil,
    hour_floor,
    parse_hour_key,
)
from ssmd.history.schema import from_table, schema, to_table
from ssmd.history.store import cached_path, list_objects
from ssmd.history.stream import read_recent
from ssmd.model.records import RECORD_TYPES, Book, Gap
from ssmd.storage import NotFound, ObjectStore

By = Literal["ts_event", "ts_recv"]
EVENT_SLACK_NS = HOUR_NS
"""Partitions are by ts_recv hour; a ts_event query also reads one hour either side."""


class QueryError(ValueError):
    """Bad query arguments (the CLI's exit 1)."""


def check_range(start: int, end: int, by: str) -> None:
    if by not in ("ts_event", "ts_recv"):
        raise QueryError(f"--by must be ts_event or ts_recv, not {by!r}")
    if end <= start:
        raise QueryError(f"empty range: to ({end}) must be after from ({start})")


@dataclass
class BookAt:
    """The L2 book of one symbol at a time; `known` False says why in `reason`."""

    symbol: str
    at: int
    known: bool
    reason: str = ""
    snapshot_ts_recv: int = 0
    deltas: int = 0
    last_ts_recv: int = 0
    bids: list[tuple[int, int]] = field(default_factory=list)
    asks: list[tuple[int, int]] = field(default_factory=list)


class History:
    """Reads of one feed's archive version (the newest by default) plus its stream."""

    def __init__(
        self,
        store: ObjectStore,
        env: str,
        feed: str,
        *,
        version: int | None = None,
        nats_url: str | None = None,
        scope: SeqScope = "unknown",
        cache: Path | None = None,
    ) -> None:
        self.store, self.env, self.feed = store, env, feed
        self.version = version if version is not None else (latest_version(store) or 1)
        self.nats_url = nats_url
        self.scope = scope
        self.cache = cache or Path(".ssmd-cache")
        self._markers: dict[int, dict[str, Any]] | None = None
        self.sources: dict[str, int] = {"archive": 0, "stream": 0, "deduplicated": 0}
        """Rows taken from each source by the last read (what --json reports)."""

    # -- coverage -----------------------------------------------------------------------

    def markers(self) -> dict[int, dict[str, Any]]:
        """hour_ns -> coverage marker of every reprocessed hour of this version."""
        if self._markers is None:
            found: dict[int, dict[str, Any]] = {}
            prefix = feed_prefix(self.version, self.env, self.feed) + "_hours"
            for info in list_objects(self.store, prefix):
                parsed = parse_hour_key(info.key)
                if parsed is not None:
                    try:
                        found[parsed[3]] = msgspec.json.decode(self.store.get(info.key))
                    except NotFound:
                        continue
            self._markers = found
        return self._markers

    # -- reads --------------------------------------------------------------------------

    def records(
        self, kind: str, symbol: str, start: int, end: int, by: By = "ts_event"
    ) -> pa.Table:
        """Records of one type and symbol with `by` in [start, end), in `by` order."""
        schema(kind)
        check_range(start, end, by)
        slack = EVENT_SLACK_NS if by == "ts_event" else 0
        lo, hi = hour_floor(start - slack), hour_ceil(end + slack)
        markers = self.markers()
        covered = sorted(h for h in markers if lo <= h < hi)
        archive = self._archive(kind, symbol, start, end, by, covered)
        self.sources = {"archive": archive.num_rows, "stream": 0, "deduplicated": 0}
        complete = {h for h in covered if markers[h].get("complete")}
        if self.nats_url is None or len(complete) == (hi - lo) // HOUR_NS:
            return archive
        stream = self._stream(kind, symbol, start, end, by, complete, archive)
        if stream.num_rows == 0:
            return archive
        both = pa.concat_tables([archive, stream])
        return both.take(pc.sort_indices(both, sort_keys=[(by, "ascending")]))

    def trades(self, symbol: str, start: int, end: int, by: By = "ts_event") -> pa.Table:
        return self.records("trade", symbol, start, end, by)

    def quotes(self, symbol: str, start: int, end: int, by: By = "ts_event") -> pa.Table:
        return self.records("quote", symbol, start, end, by)

    def archived(self, kind: str, start: int, end: int) -> pa.Table:
        """Every symbol's records with ts_recv in [start, end) from the archive alone (no
        stream merge), in ts_recv order: what the gateway replays from where the stream
        no longer reaches."""
        check_range(start, end, "ts_recv")
        lo, hi = hour_floor(start), hour_ceil(end)
        hours = sorted(h for h in self.markers() if lo <= h < hi)
        return self._archive(kind, None, start, end, "ts_recv", hours)

    def _archive(
        self, kind: str, symbol: str | None, start: int, end: int, by: str, hours: Iterable[int]
    ) -> pa.Table:
        files = []
        for hour in hours:
            key = Partition(self.version, self.env, self.feed, kind, hour).key
            try:
                info = self.store.head(key)
            except NotFound:
                continue
            files.append(str(cached_path(self.store, info, self.cache)))
        if not files:
            return schema(kind).empty_table()
        cols = ", ".join(schema(kind).names)
        sql = (
            f"SELECT {cols} FROM read_parquet($files, file_row_number = true, filename = true) "
            f"WHERE {'' if symbol is None else 'symbol = $symbol AND '}"
            f"{by} >= $start AND {by} < $end ORDER BY {by}, filename, file_row_number"
        )
        con = duckdb.connect()
        try:
            params: dict[str, Any] = {"files": files, "start": start, "end": end}
            if symbol is not None:
                params["symbol"] = symbol
            table = con.sql(sql, params=params).to_arrow_table()
        finally:
            con.close()
        return table.cast(schema(kind))

    def _stream(
        self,
        kind: str,
        symbol: str,
        start: int,
        end: int,
        by: str,
        complete: set[int],
        archive: pa.Table,
    ) -> pa.Table:
        assert self.nats_url is not None
        since = start - (EVENT_SLACK_NS if by == "ts_event" else 0)
        # the oldest hour the stream must supply: the first one not completely archived
        first_open = hour_floor(since)
        while first_open in complete:
            first_open += HOUR_NS
        recent = read_recent(self.nats_url, self.env, self.feed, kind, symbol, first_open)
        seen = {
            msg_id(r, self.scope)
            for r in from_table(kind, archive)
            if hour_floor(r.ts_recv) not in complete
        }
        keep = []
        dupes = 0
        for mid, record in recent:
            if hour_floor(record.ts_recv) in complete:
                continue
            if not start <= getattr(record, by) < end:
                continue
            if mid in seen:
                dupes += 1
                continue
            seen.add(mid)
            keep.append(record)
        self.sources["stream"] = len(keep)
        self.sources["deduplicated"] = dupes
        return to_table(kind, keep)

    # -- book ---------------------------------------------------------------------------

    def book_at(
        self, symbol: str, at: int, by: By = "ts_event", lookback_ns: int = 24 * HOUR_NS
    ) -> BookAt:
        """The book at `at`: the last snapshot with `by` <= at plus the deltas after it up
        to `at`, in capture order. Unknown (never a wrong book) when there is no snapshot
        in the lookback, or a gap of the symbol after the snapshot and at or before `at`."""
        check_range(at - lookback_ns, at + 1, by)
        start = at - lookback_ns
        books = from_table("book", self.records("book", symbol, start, at + 1, by))
        books.sort(key=lambda b: b.ts_recv)  # capture order (stable: archive order on ties)
        snap = max((i for i, b in enumerate(books) if b.snapshot), default=None)
        if snap is None:
            return BookAt(symbol, at, False, f"no book snapshot within {lookback_ns // 10**9}s")
        base = books[snap]
        assert isinstance(base, Book)
        gaps = [
            g
            for g in from_table("gap", self.records("gap", symbol, start, at + 1, "ts_recv"))
            if isinstance(g, Gap) and base.ts_recv < g.ts_recv <= at
        ]
        if gaps:
            g = gaps[0]
            return BookAt(
                symbol, at, False,
                f"gap ({g.reason}) at ts_recv {g.ts_recv} after the last snapshot "
                f"(ts_recv {base.ts_recv}): {g.detail}",
                snapshot_ts_recv=base.ts_recv,
            )  # fmt: skip
        bids = dict(base.bids)
        asks = dict(base.asks)
        deltas = books[snap + 1 :]
        for b in deltas:
            assert isinstance(b, Book)
            for side, levels in ((bids, b.bids), (asks, b.asks)):
                for px, sz in levels:
                    if sz:
                        side[px] = sz
                    else:
                        side.pop(px, None)
        last = deltas[-1].ts_recv if deltas else base.ts_recv
        return BookAt(
            symbol, at, True, "", base.ts_recv, len(deltas), last,
            sorted(bids.items(), reverse=True), sorted(asks.items()),
        )  # fmt: skip

    # -- bars ---------------------------------------------------------------------------

    def bars(
        self, symbol: str, start: int, end: int, interval_ns: int, by: By = "ts_event"
    ) -> pa.Table:
        """OHLCV bars of the trades: bar start (floor of `by` to the interval), open,
        high, low, close (fixed-point), volume (sum of sizes), trades; empty bars omitted."""
        if interval_ns <= 0:
            raise QueryError("the bar interval must be positive")
        trades = self.trades(symbol, start, end, by)
        trades = trades.append_column("_n", pa.array(range(trades.num_rows), pa.int64()))
        con = duckdb.connect()
        try:
            con.register("t", trades)
            sql = (
                f"SELECT ({by} // $iv) * $iv AS ts, first(price ORDER BY _n) AS open, "
                "max(price) AS high, min(price) AS low, last(price ORDER BY _n) AS close, "
                "sum(size)::BIGINT AS volume, count(*)::BIGINT AS trades "
                "FROM t GROUP BY 1 ORDER BY 1"
            )
            return con.sql(sql, params={"iv": interval_ns}).to_arrow_table()
        finally:
            con.close()


def latest_version(store: ObjectStore) -> int | None:
    """Highest N with anything under normalized/vN/."""
    versions = set()
    for info in list_objects(store, "normalized"):
        part = info.key.split("/")[1]
        if part.startswith("v") and part[1:].isdigit():
            versions.add(int(part[1:]))
    return max(versions) if versions else None


def kinds() -> tuple[str, ...]:
    return RECORD_TYPES
