"""The C record writers (`ssmd._native`: record.c, blake2b.c) against their references:
JSON bytes against `msgspec.json.encode(to_wire(record))` and the Python `encode`, the
content hash against the Python one (msgspec msgpack + hashlib BLAKE2b), BLAKE2b itself
against hashlib — for arbitrary records, ints up to and beyond 64 bits, any text."""

from __future__ import annotations

import hashlib

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from ssmd.bus.msgid import content_hash, content_hash_python
from ssmd.model import native
from ssmd.model.codec import encode, encode_python, to_wire
from ssmd.model.records import Book, Quote, Trade

INTS = st.one_of(
    st.integers(-(2**63) + 1, 2**63 - 1),
    st.integers(-(2**70), 2**70),  # beyond int64 (C declines on JSON, msgpack up to uint64)
    st.sampled_from([0, 1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, 2**32, -(2**31)]),
)
TEXT = st.one_of(st.text(max_size=40), st.from_regex(r"[A-Za-z0-9/_.-]{0,12}", fullmatch=True))
HEADER = {"feed": TEXT, "venue": TEXT, "symbol": TEXT, "iid": INTS, "ts_event": INTS,
          "ts_recv": INTS, "seq": INTS}  # fmt: skip
LEVELS = st.lists(st.tuples(INTS, INTS), max_size=20)
RECORDS = st.one_of(
    st.builds(Book, snapshot=st.booleans(), bids=LEVELS, asks=LEVELS, **HEADER),
    st.builds(Trade, price=INTS, size=INTS, side=st.sampled_from(["buy", "sell", "unknown"]),
              trade_id=TEXT, **HEADER),
    st.builds(Quote, bid_px=INTS, bid_sz=INTS, ask_px=INTS, ask_sz=INTS, **HEADER),
)  # fmt: skip
PLAIN = st.builds(
    Book, snapshot=st.booleans(), bids=st.lists(st.tuples(st.integers(0, 2**62),
    st.integers(0, 2**62)), max_size=10), asks=st.just([]), feed=st.just("sim"),
    venue=st.just("sim"), symbol=st.just("BTC-USD"), iid=st.integers(0, 1000),
    ts_event=st.integers(0, 2**62), ts_recv=st.integers(0, 2**62),
)  # fmt: skip


def _outcome(fn, *args, **kwargs) -> object:
    try:
        return fn(*args, **kwargs)
    except (OverflowError, ValueError, TypeError, msgspec.EncodeError) as exc:
        return type(exc)


def test_the_writers_are_built() -> None:
    assert native.encode_record is not None and native.content_hash is not None, (
        "ssmd._native did not build: install a C compiler and zlib's header "
        "(Debian: apt install gcc zlib1g-dev) and reinstall (make install)"
    )


@given(st.binary(max_size=600), st.integers(1, 64))
def test_blake2b_is_hashlibs(data: bytes, size: int) -> None:
    assert native._native.blake2b(data, size) == hashlib.blake2b(data, digest_size=size).digest()


@given(RECORDS)
def test_json_bytes_are_the_reference(record: Book | Trade | Quote) -> None:
    got = native.encode_record(record)
    reference = _outcome(lambda: msgspec.json.encode(to_wire(record)))
    assert got is None or got == reference
    assert _outcome(encode, record) == _outcome(encode_python, record) == reference


@given(RECORDS, st.booleans())
def test_content_hash_is_the_reference(record: Book | Trade | Quote, drop_seq: bool) -> None:
    got = native.content_hash(record, drop_seq)
    reference = _outcome(content_hash_python, record, drop_seq=drop_seq)
    assert got is None or got == reference
    assert _outcome(content_hash, record, drop_seq=drop_seq) == reference


@given(PLAIN)
def test_c_writes_the_common_records_itself(record: Book) -> None:
    """Plain ASCII names, ints within int64: C answers (no silent fallback)."""
    assert native.encode_record(record) == msgspec.json.encode(to_wire(record))
    assert native.content_hash(record, False) == content_hash_python(record)
