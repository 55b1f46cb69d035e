"""Venue reference data into the secmaster (`ssmd instrument sync`, and `ssmd up` once).

The venue module parses its REST reference body into instruments (pure); here they are
chosen — the feed's listed instruments, or everything the venue lists — and upserted as
effective-dated versions under the same iids `env apply` allocated, so records captured
before the attributes were known join them by iid.
"""

from __future__ import annotations

import httpx
import msgspec
import psycopg

from ssmd.meta import audit, instruments
from ssmd.model.instrument import Instrument
from ssmd.spec import Environment
from ssmd.venues.registry import venue_info, venue_module, wire_symbol


class Synced(msgspec.Struct, kw_only=True, frozen=True):
    feed: str
    venue: str
    url: str
    created: list[str]
    changed: list[str]
    unchanged: int
    missing: list[str]
    """Instruments the feed lists that the venue's reference data does not (a typo, or
    delisted): the feed still captures whatever the venue sends for them."""


def reference_url(env: Environment, feed: str, rest_url: str | None = None) -> str:
    """The venue's reference-data URL for a feed, on `rest_url` instead when given (a
    replay server, a proxy) — the same override the connector takes."""
    venue = env.feeds[feed].venue
    url = venue_module(venue).instruments_url()
    base = venue_info(venue).rest_url
    return url.replace(base, rest_url.rstrip("/"), 1) if rest_url else url


class ReferenceUnavailable(Exception):
    """The venue's reference data could not be fetched (network, HTTP status)."""


def fetch(url: str, timeout: float = 15.0) -> bytes:
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise ReferenceUnavailable(f"cannot fetch {url}: {exc}") from None
    if response.status_code != 200:
        raise ReferenceUnavailable(f"{url} answered {response.status_code}")
    return response.content


def choose(
    listed: list[str], parsed: list[Instrument], venue: str, everything: bool = False
) -> tuple[list[Instrument], list[str]]:
    """(instruments to upsert, listed names the reference lacks). Pure."""
    by_symbol = {i.venue_symbol: i for i in parsed}
    missing = [name for name in listed if wire_symbol(venue, name) not in by_symbol]
    if everything:
        return sorted(parsed, key=lambda i: i.venue_symbol), missing
    wanted = dict.fromkeys(wire_symbol(venue, name) for name in listed)
    return [by_symbol[s] for s in wanted if s in by_symbol], missing


def sync_feed(
    conn: psycopg.Connection,
    env: Environment,
    feed: str,
    body: bytes,
    url: str,
    actor: str,
    *,
    everything: bool = False,
    effective_ns: int | None = None,
) -> Synced:
    """Upsert the chosen instruments of one reference body and audit what changed (one
    transaction). ValueError when the body is not the venue's reference data."""
    spec = env.feeds[feed]
    parsed = venue_module(spec.venue).parse_instruments(body)
    chosen, missing = choose(spec.instruments, parsed, spec.venue, everything)
    created: list[str] = []
    changed: list[str] = []
    unchanged = 0
    with conn.transaction():
        for inst in chosen:
            done = instruments.upsert(conn, inst, effective_ns)
            if done.outcome == "created":
                created.append(inst.venue_symbol)
            elif done.outcome == "changed":
                changed.append(inst.venue_symbol)
            else:
                unchanged += 1
        venue = venue_info(spec.venue).venue
        if created or changed:
            details = {"url": url, "created": created, "changed": changed}
            audit.append(conn, actor, "instrument.sync", f"{venue}/{feed}", details)
    return Synced(feed=feed, venue=venue, url=url, created=created, changed=changed,
                  unchanged=unchanged, missing=missing)  # fmt: skip
