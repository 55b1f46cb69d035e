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

MAX_PAGES = 1000
"""A venue that pages for ever is cut here (Kalshi lists ~10^5 markets at 1,000 a page)."""


class Synced(msgspec.Struct, kw_only=True, frozen=True):
    feed: str
    venue: str
    url: str
    pages: int
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


def fetch_instruments(
    env: Environment, feed: str, url: str, *, everything: bool = False, timeout: float = 15.0,
    max_pages: int = MAX_PAGES,
) -> tuple[list[Instrument], int]:  # fmt: skip
    """(instruments, pages read): the venue's reference data from `url` on, following its
    pages (`next_page` in the venue module) until the last — or, unless `everything`,
    until every instrument the feed lists has been seen. ValueError on a body that is not
    the venue's reference data, ReferenceUnavailable when a page cannot be fetched."""
    spec = env.feeds[feed]
    module = venue_module(spec.venue)
    next_page = getattr(module, "next_page", None)
    wanted = {wire_symbol(spec.venue, name) for name in spec.instruments}
    parsed: list[Instrument] = []
    pages = 0
    while True:
        body = fetch(url, timeout)
        pages += 1
        page = module.parse_instruments(body)
        parsed += page
        wanted.difference_update(i.venue_symbol for i in page)
        following = next_page(url, body) if next_page else None
        done = following is None or following == url or pages == max_pages
        if done or (not everything and not wanted):
            return parsed, pages
        url = following


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
    parsed: list[Instrument],
    url: str,
    actor: str,
    *,
    pages: int = 1,
    everything: bool = False,
    effective_ns: int | None = None,
) -> Synced:
    """Upsert the chosen instruments of the venue's reference data (`fetch_instruments`)
    and audit what changed (one transaction)."""
    spec = env.feeds[feed]
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
            details = {"url": url, "pages": pages, "created": created, "changed": changed}
            audit.append(conn, actor, "instrument.sync", f"{venue}/{feed}", details)
    return Synced(feed=feed, venue=venue, url=url, pages=pages, created=created,
                  changed=changed, unchanged=unchanged, missing=missing)  # fmt: skip
