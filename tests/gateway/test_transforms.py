"""Transforms: values, drops, chains, loading from a definition, error reporting."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from ssmd.gateway.transforms import CompiledTransform, TransformError, Transforms

QUOTE = {
    "type": "quote",
    "feed": "kraken",
    "venue": "kraken-v2",
    "symbol": "BTC-USD",
    "iid": 7,
    "ts_event": 1709290795000000000,
    "ts_recv": 1709290795000000123,
    "seq": 0,
    "bid_px": "64000.1",
    "bid_sz": "0.5",
    "ask_px": "64000.25",
    "ask_sz": "1.25",
}
BOOK = {
    "type": "book",
    "feed": "kraken",
    "venue": "kraken-v2",
    "symbol": "ETH-USD",
    "ts_recv": 1,
    "snapshot": True,
    "bids": [["3000.1", "2"], ["3000", "0.000000001"]],
    "asks": [],
}

MID = """
-- mid price and spread, exact
function transform(r)
  if r.type ~= "quote" then return r end
  r.mid = dec.div(dec.add(r.bid_px, r.ask_px), 2)
  r.spread = dec.sub(r.ask_px, r.bid_px)
  r.bid_px, r.bid_sz, r.ask_px, r.ask_sz = nil, nil, nil, nil
  return r
end
"""


def test_mid_price_exact_decimals_as_strings() -> None:
    out = CompiledTransform("mid", MID).apply(dict(QUOTE))
    assert out == {
        "type": "quote",
        "feed": "kraken",
        "venue": "kraken-v2",
        "symbol": "BTC-USD",
        "iid": 7,
        "ts_event": 1709290795000000000,
        "ts_recv": 1709290795000000123,
        "seq": 0,
        "mid": "64000.175",
        "spread": "0.15",
    }


def test_numbers_round_trip_exactly() -> None:
    t = CompiledTransform("id", "function transform(r) return r end")
    big = dict(QUOTE, ts_recv=2**63 - 1, iid=-(2**63), bid_px="0.000000001")
    assert t.apply(big) == big
    assert t.apply(BOOK) == BOOK  # nested arrays, an empty list stays a list
    assert t.apply({"type": "x", "n": None, "o": {}, "l": []}) == {
        "type": "x",
        "n": None,
        "o": {},
        "l": [],
    }


def test_dec_helpers() -> None:
    src = """
    function transform(r)
      return {
        a = dec.add("0.1", "0.2"), m = dec.mul("1.5", "-2"), d = dec.div("1", "3"),
        d2 = dec.div("1", "3", 2), r = dec.round("2.675", 2), c = dec.cmp("1.10", "1.1"),
        lt = dec.cmp("1", "2"), n = dec.norm("1.2300"), z = dec.sub("1.5", "1.5"),
        ab = dec.abs("-3"), ng = dec.neg("3"), i = dec.add(r.seq, "1"),
      }
    end"""
    out = CompiledTransform("dec", src).apply(dict(QUOTE, seq=41))
    assert out == {
        "a": "0.3",
        "m": "-3",
        "d": "0.333333333",
        "d2": "0.33",
        "r": "2.68",
        "c": 0,
        "lt": -1,
        "n": "1.23",
        "z": "0",
        "ab": "3",
        "ng": "-3",
        "i": "42",
    }


def test_float_in_output_is_an_error() -> None:
    t = CompiledTransform("fl", "function transform(r) r.x = tonumber(r.bid_px) return r end")
    with pytest.raises(TransformError) as info:
        t.apply(QUOTE)
    assert info.value.kind == "output" and "float" in info.value.lua_message


def test_dec_refuses_floats() -> None:
    t = CompiledTransform("fl", "function transform(r) r.x = dec.add(r.bid_px, 0.1) return r end")
    with pytest.raises(TransformError, match="floats are not exact"):
        t.apply(QUOTE)


def test_filter_drops_records() -> None:
    src = """
    function transform(r)
      if r.symbol:match("^BTC%-") then return r end
      return nil
    end"""
    t = CompiledTransform("btc-only", src)
    records = [QUOTE, BOOK, dict(QUOTE, symbol="BTC-EUR"), dict(QUOTE, symbol="XBTC-USD")]
    kept = t.apply_many(records)
    assert [r["symbol"] for r in kept] == ["BTC-USD", "BTC-EUR"]
    assert t.apply(BOOK) is None


def test_state_is_per_instance() -> None:
    src = "n = 0\nfunction transform(r) n = n + 1; r.n = n; return r end"
    ts = Transforms({"count": src})
    a, b = ts.get("count"), ts.get("count")
    assert [a.apply(QUOTE)["n"] for _ in range(3)] == [1, 2, 3]
    assert b.apply(QUOTE)["n"] == 1  # another subscription's instance starts fresh


def test_chain_applies_in_order_and_drops() -> None:
    ts = Transforms(
        {
            "mid": MID,
            "tag": "function transform(r) r.tag = (r.mid or '?') .. '!' return r end",
            "none": "function transform(r) return nil end",
        }
    )
    assert ts.chain(["mid", "tag"]).apply(QUOTE)["tag"] == "64000.175!"
    assert ts.chain(["none", "tag"]).apply(QUOTE) is None
    assert ts.chain([]).apply(QUOTE) == QUOTE
    with pytest.raises(KeyError, match="nope"):
        ts.get("nope")


def test_input_record_is_not_mutated() -> None:
    record = dict(QUOTE)
    CompiledTransform("mid", MID).apply(record)
    assert record == QUOTE


def test_syntax_error_has_name_and_line() -> None:
    with pytest.raises(TransformError) as info:
        CompiledTransform("broken", "function transform(r)\n  return r +\nend\n")
    err = info.value
    assert err.kind == "syntax" and err.name == "broken"
    assert err.lua_message.startswith("broken:3:")
    assert "transform 'broken'" in str(err)


def test_runtime_error_has_name_and_line() -> None:
    t = CompiledTransform("boom", "function transform(r)\n\n  error('bad record')\nend")
    with pytest.raises(TransformError) as info:
        t.apply(QUOTE)
    assert info.value.kind == "runtime" and info.value.lua_message == "boom:3: bad record"


def test_missing_transform_function() -> None:
    with pytest.raises(TransformError, match="no function 'transform'"):
        CompiledTransform("empty", "local x = 1")


@pytest.mark.parametrize(
    ("ret", "msg"),
    [
        ("42", "a table or nil"),
        ("{1, 2}", "object table"),
        ("{f = tostring}", "cannot be sent"),
        ("{[true] = 1}", "not a string"),
        ("{[1] = 'a', [3] = 'b'}", "holes"),
        ("{a = function() end}", "cannot be sent"),
    ],
)
def test_bad_outputs(ret: str, msg: str) -> None:
    t = CompiledTransform("bad", f"function transform(r) return {ret} end")
    with pytest.raises(TransformError) as info:
        t.apply(QUOTE)
    assert info.value.kind == "output" and msg in info.value.lua_message


def _env(tmp_path: Path, transforms: dict, clients: list | None = None) -> SimpleNamespace:
    return SimpleNamespace(transforms=transforms, clients=clients or [])


def _spec(source: str = "", file: str = "") -> SimpleNamespace:
    return SimpleNamespace(language="lua", source=source, file=file, description="")


def test_from_spec_inline_and_file(tmp_path: Path) -> None:
    (tmp_path / "lua").mkdir()
    (tmp_path / "lua" / "mid.lua").write_text(MID)
    env = _env(
        tmp_path,
        {"mid": _spec(file="lua/mid.lua"), "drop": _spec("function transform(r) end")},
        [SimpleNamespace(id="research", transforms=["mid"])],
    )
    ts = Transforms.from_spec(env, tmp_path)
    assert ts.names() == ["drop", "mid"]
    assert ts.for_client("research").apply(QUOTE)["mid"] == "64000.175"
    assert not ts.for_client("nobody")
    assert ts.get("drop").apply(QUOTE) is None


def test_from_spec_reports_the_broken_transform(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        {"good": _spec("function transform(r) return r end"), "bad": _spec("x = = 1")},
    )
    with pytest.raises(TransformError) as info:
        Transforms.from_spec(env, tmp_path)
    assert info.value.name == "bad" and info.value.lua_message.startswith("bad:1:")


def test_from_spec_missing_file(tmp_path: Path) -> None:
    env = _env(tmp_path, {"gone": _spec(file="nope.lua")})
    with pytest.raises(TransformError) as info:
        Transforms.from_spec(env, tmp_path)
    assert info.value.kind == "source" and "nope.lua" in info.value.lua_message


def test_from_real_definition(tmp_path: Path) -> None:
    from ssmd import spec

    (tmp_path / "mid.lua").write_text(MID)
    path = tmp_path / "dev.yaml"
    path.write_text(
        "apiVersion: ssmd/v1\nkind: Environment\nmetadata: {name: dev}\n"
        "feeds:\n  sim:\n    venue: sim\n    instruments: [BTC-USD]\n"
        "clients:\n  - id: bot\n    type: non-display\n"
        "    entitlements: [{feeds: [sim]}]\n    transforms: [mid]\n"
        "transforms:\n  mid: {file: mid.lua}\n"
    )
    env = spec.load(path)
    ts = Transforms.from_spec(env, tmp_path)
    assert ts.for_client("bot").apply(QUOTE)["spread"] == "0.15"
