"""Every registry venue module keeps the contract in `ssmd/venues/base.py`: the connector
runtime drives them all through exactly these names and signatures."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from ssmd.model.instrument import Instrument
from ssmd.model.records import Gap
from ssmd.venues.base import CONTRACT, IntegrityStats, SymbolInfo, VenueInfo
from ssmd.venues.registry import VENUES, venue_module

NAMES = sorted(VENUES)

# a venue symbol each module accepts, and a recorded reference-data body it parses
SAMPLE = {
    "kraken-v1": ("XBT/USD", "recordings/KRAKEN.0"),
    "kraken-v2": ("BTC/USD", "recordings/KRAKEN.0"),
    "binance": ("NKNUSDT", "recordings/BINANCE.0"),
    "coinbase-exchange": ("BTC-USD", "recordings/COINBASE.0"),
    "coinbase-advanced": ("BTC-USD", "messages/coinbase/http_products.json"),
    "kalshi": ("KXBTC-25", "messages/kalshi/http_markets.json"),
    "polymarket": ("123", "messages/polymarket/clob_market_response.json"),
    "sim": ("BTC-USD", "recordings/KRAKEN.0"),  # Kraken v2 wire, AssetPairs reference data
}
SIGNATURES = {
    "normalizer": ["symbols", "feed"],
    "subscribe": ["channels", "venue_symbols", "depth"],
    "unsubscribe": ["channels", "venue_symbols", "depth"],
    "heartbeat": [],
    "instruments_url": [],
    "parse_instruments": ["body"],
    "snapshot_url": ["venue_symbol", "depth"],
}


def _body(fixtures_dir: Path, rel: str) -> str:
    text = (fixtures_dir / rel).read_text()
    if rel.startswith("recordings/"):  # `https://… -> ts: body`, the first REST line
        line = next(ln for ln in text.splitlines() if " -> " in ln)
        return line.split(" -> ", 1)[1].split(": ", 1)[1]
    return text


def test_every_registry_venue_is_sampled() -> None:
    assert set(SAMPLE) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_module_keeps_the_contract(name: str, fixtures_dir: Path) -> None:
    mod = venue_module(name)
    for attr in CONTRACT:
        assert hasattr(mod, attr), f"{name}: no {attr}"
    info = mod.INFO
    assert isinstance(info, VenueInfo) and info is VENUES[name]
    for fn, params in SIGNATURES.items():
        sig = inspect.signature(getattr(mod, fn))
        positional = [
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        assert positional[: len(params)] == params, f"{name}.{fn}{sig}"
        extra = [p for p in sig.parameters.values() if p.name not in params]
        assert all(p.default is not p.empty for p in extra), f"{name}.{fn}: required extras"

    symbol, ref = SAMPLE[name]
    # normalizer: fresh per call, keeps the Normalizer protocol, never raises
    n = mod.normalizer({symbol: SymbolInfo("X-Y", 7)}, feed="f")
    assert n is not mod.normalizer()
    assert isinstance(n.stats, IntegrityStats)
    (gap,) = n.on_frame(b"\xff not json", 5)
    assert isinstance(gap, Gap) and gap.reason == "parse" and gap.feed == "f"
    assert n.stats.parse_errors == 1 and n.stats.frames == 1
    assert n.take_resyncs() == [] and n.take_resyncs() == []
    assert isinstance(n.on_rest("https://example/unknown", b"{}", 6), list)

    # subscribe / unsubscribe: every registry channel, frames are JSON text, limits enforced
    frames = mod.subscribe(info.channels, [symbol])
    assert frames and all(isinstance(f, str) for f in frames)
    assert all(isinstance(json.loads(f), dict) for f in frames)
    with pytest.raises(ValueError):
        mod.subscribe(info.channels, [])
    with pytest.raises(ValueError):
        mod.subscribe(("no-such-channel",), [symbol])
    many = [f"S{i}" for i in range(info.max_instruments_per_connection + 1)]
    with pytest.raises(ValueError):
        mod.subscribe(info.channels, many)
    per_msg = [f"S{i}" for i in range(info.max_instruments_per_connection)]
    for frame in mod.subscribe(info.channels[:1], per_msg):
        assert frame.count('"S') <= info.max_symbols_per_message
    if name == "kalshi":  # by subscription id: the one documented extra
        undo = mod.unsubscribe(info.channels, [symbol], sids=[1])
    else:
        undo = mod.unsubscribe(info.channels, [symbol])
    assert undo and all(isinstance(json.loads(f), dict) for f in undo)

    # heartbeat: a frame iff the registry gives an interval to send it at
    beat = mod.heartbeat()
    assert (beat is not None) == (info.heartbeat_interval_s > 0)
    assert beat is None or isinstance(beat, str)

    # reference data
    assert mod.instruments_url().startswith(info.rest_url + "/")
    instruments = mod.parse_instruments(_body(fixtures_dir, ref))
    assert instruments and all(isinstance(i, Instrument) for i in instruments)
    assert {i.venue for i in instruments} == {info.venue}

    # REST snapshots: only Binance's stream needs one
    url = mod.snapshot_url(symbol, None)
    if name == "binance":
        assert url == f"{info.rest_url}/depth?symbol={symbol}&limit=1000"
    else:
        assert url is None
