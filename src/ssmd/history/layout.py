"""Object keys of the normalized archive (DESIGN.md §7).

```
normalized/v{N}/{env}/{feed}/{type}/date=YYYY-MM-DD/hour=HH/{type}-{YYYYMMDD}T{HH}.parquet
normalized/v{N}/{env}/{feed}/_hours/date=YYYY-MM-DD/hour=HH.json      coverage marker
normalized/v{N}/{env}/{feed}/_quarantine/{segment}.json               corrupted raw segment
```

Partitions are by the UTC hour of `ts_recv`: every record has one (gaps have no
`ts_event`), and it is the hour of the raw segment the record came from, so one raw hour
becomes exactly one Parquet hour. One file per (type, hour) with a name fixed by the
partition: a rerun overwrites it, never adds beside it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
PREFIX = "normalized"
_PART = re.compile(
    r"^normalized/v(?P<v>\d+)/(?P<env>[^/]+)/(?P<feed>[^/]+)/(?P<type>[a-z]+)/"
    r"date=(?P<date>\d{4}-\d\d-\d\d)/hour=(?P<hour>\d\d)/[^/]+\.parquet$"
)
_HOUR = re.compile(
    r"^normalized/v(?P<v>\d+)/(?P<env>[^/]+)/(?P<feed>[^/]+)/_hours/"
    r"date=(?P<date>\d{4}-\d\d-\d\d)/hour=(?P<hour>\d\d)\.json$"
)


class Partition(NamedTuple):
    """One Parquet file of the archive."""

    version: int
    env: str
    feed: str
    type: str
    hour_ns: int

    @property
    def key(self) -> str:
        date, hh = date_hour(self.hour_ns)
        stamp = date.replace("-", "")
        return (
            f"{feed_prefix(self.version, self.env, self.feed)}{self.type}/"
            f"date={date}/hour={hh}/{self.type}-{stamp}T{hh}.parquet"
        )


def date_hour(ns: int) -> tuple[str, str]:
    """('YYYY-MM-DD', 'HH') of the UTC hour holding `ns`."""
    d = datetime.fromtimestamp(ns // 10**9, tz=UTC)
    return d.strftime("%Y-%m-%d"), d.strftime("%H")


def hour_floor(ns: int) -> int:
    return ns - ns % HOUR_NS


def hour_ceil(ns: int) -> int:
    return hour_floor(ns + HOUR_NS - 1)


def hour_of(date: str, hour: str) -> int:
    d = datetime.strptime(f"{date} {hour}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    return int(d.timestamp()) * 10**9


def version_prefix(version: int) -> str:
    return f"{PREFIX}/v{version}/"


def feed_prefix(version: int, env: str, feed: str) -> str:
    return f"{PREFIX}/v{version}/{env}/{feed}/"


def hour_key(version: int, env: str, feed: str, hour_ns: int) -> str:
    date, hh = date_hour(hour_ns)
    return f"{feed_prefix(version, env, feed)}_hours/date={date}/hour={hh}.json"


def quarantine_key(version: int, env: str, feed: str, segment: str) -> str:
    return f"{feed_prefix(version, env, feed)}_quarantine/{segment}.json"


def parse_partition(key: str) -> Partition | None:
    m = _PART.match(key)
    if m is None:
        return None
    hour = hour_of(m["date"], m["hour"])
    return Partition(int(m["v"]), m["env"], m["feed"], m["type"], hour)


def parse_hour_key(key: str) -> tuple[int, str, str, int] | None:
    """(version, env, feed, hour_ns) of a coverage marker key."""
    m = _HOUR.match(key)
    if m is None:
        return None
    return int(m["v"]), m["env"], m["feed"], hour_of(m["date"], m["hour"])
