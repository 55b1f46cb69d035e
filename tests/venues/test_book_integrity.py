"""Deliberately corrupted copies of the recordings, made at test time, must be caught."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ssmd.capture.derive import Deriver
from ssmd.cli.venue import load_recording, replay
from ssmd.model.records import Book, Gap

KRAKEN = "KRAKEN.ws.50.0"
BINANCE = "BINANCE.ws.1.0"


def _copy(fixtures_dir: Path, tmp_path: Path, name: str, edit) -> Path:
    rec = fixtures_dir / "recordings"
    feed = name.split(".")[0]
    for sib in rec.glob(f"{feed}.*"):
        if sib.name != name:
            shutil.copy(sib, tmp_path / sib.name)
    lines = (rec / name).read_text().split("\n")
    (tmp_path / name).write_text("\n".join(edit(lines)))
    return tmp_path / name


def _run(path: Path, venue: str) -> tuple[dict, list]:
    frames, _ = load_recording(path)
    out: list = []
    report = replay(Deriver(venue), frames, out)
    return report, out


def _line(lines: list[str], needle: str, nth: int = 0) -> int:
    return [i for i, line in enumerate(lines) if needle in line][nth]


# XBT/CHF (channel 464): line 61 inserts an ask at 56872.7 (deep: outside the top 10, so
# losing it is invisible to a top-10 checksum), line 88 deletes a bid inside the top 10.
CHF = '"book-1000","XBT/CHF"]'


def test_kraken_dropped_frame(fixtures_dir: Path, tmp_path: Path) -> None:
    def drop(lines: list[str]) -> list[str]:
        i = _line(lines, "1618678134.288168:")  # a top-10 bid delete
        return lines[:i] + lines[i + 1 :]

    report, out = _run(_copy(fixtures_dir, tmp_path, KRAKEN, drop), "kraken-v1")
    gaps = [r for r in out if isinstance(r, Gap)]
    assert [(g.reason, g.symbol) for g in gaps] == [("checksum", "BTC-CHF")]
    assert report["checksums_failed"] == 1 and report["resyncs"] == 1
    # nothing for BTC-CHF after the failure: the book is known wrong until resubscribed
    after = [r for r in out if isinstance(r, Book) and r.symbol == "BTC-CHF"]
    assert max(r.ts_recv for r in after) < gaps[0].ts_recv


def test_kraken_swapped_pair(fixtures_dir: Path, tmp_path: Path) -> None:
    def swap(lines: list[str]) -> list[str]:
        i, j = _line(lines, CHF, 1), _line(lines, CHF, 2)  # two consecutive XBT/CHF updates
        lines[i], lines[j] = lines[j], lines[i]
        return lines

    report, out = _run(_copy(fixtures_dir, tmp_path, KRAKEN, swap), "kraken-v1")
    assert {(g.reason, g.symbol) for g in out if isinstance(g, Gap)} == {("checksum", "BTC-CHF")}
    assert report["checksums_failed"] == 1


def test_kraken_flipped_checksum_digit(fixtures_dir: Path, tmp_path: Path) -> None:
    def flip(lines: list[str]) -> list[str]:
        i = _line(lines, '"c":"1740639334"')
        lines[i] = lines[i].replace('"c":"1740639334"', '"c":"1740639335"')
        return lines

    report, out = _run(_copy(fixtures_dir, tmp_path, KRAKEN, flip), "kraken-v1")
    (gap,) = [r for r in out if isinstance(r, Gap)]
    assert (gap.reason, gap.symbol) == ("checksum", "BTC-CHF")
    assert "1740639335" in gap.detail
    assert report["checksums_verified"] < 4269 and report["checksums_failed"] == 1


def test_kraken_truncated_frame(fixtures_dir: Path, tmp_path: Path) -> None:
    def cut(lines: list[str]) -> list[str]:
        i = _line(lines, "1618678134.288168:")
        lines[i] = lines[i][:60]
        return lines

    report, out = _run(_copy(fixtures_dir, tmp_path, KRAKEN, cut), "kraken-v1")
    (gap,) = [r for r in out if isinstance(r, Gap)]
    # the frame is lost; its channel id names the book, which is then withdrawn
    assert (gap.reason, gap.symbol) == ("parse", "BTC-CHF")
    assert report["parse_errors"] == 1 and report["resyncs"] == 1
    assert report["checksums_failed"] == 0


def test_kraken_duplicated_frame_is_harmless(fixtures_dir: Path, tmp_path: Path) -> None:
    """v1 levels are absolute: replaying one update leaves the same book, and the
    checksum says so (no sequence numbers in v1 to call it a duplicate)."""

    def dup(lines: list[str]) -> list[str]:
        i = _line(lines, "1618678134.259469:")
        return [*lines[: i + 1], lines[i], *lines[i + 1 :]]

    report, _ = _run(_copy(fixtures_dir, tmp_path, KRAKEN, dup), "kraken-v1")
    assert report["checksums_verified"] == 4270 and report["checksums_failed"] == 0


NKN = '"stream":"nknusdt@depth@100ms"'


@pytest.mark.parametrize(
    ("case", "reason"),
    [("drop", "sequence"), ("dup", "sequence"), ("swap", "sequence"), ("U", "sequence"),
     ("cut", "parse")],
)  # fmt: skip
def test_binance_corruptions(fixtures_dir: Path, tmp_path: Path, case: str, reason: str) -> None:
    def edit(lines: list[str]) -> list[str]:
        i, j = _line(lines, NKN, 10), _line(lines, NKN, 11)
        if case == "drop":
            del lines[i]
        elif case == "dup":
            lines.insert(j, lines[i])
        elif case == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif case == "U":
            lines[i] = lines[i].replace('"U":', '"U":1', 1)
        elif case == "cut":
            lines[i] = lines[i][:90]
        return lines

    report, out = _run(_copy(fixtures_dir, tmp_path, BINANCE, edit), "binance")
    gaps = [r for r in out if isinstance(r, Gap)]
    assert gaps and gaps[0].reason == reason
    assert gaps[0].symbol in ("NKN-USDT", "")
    assert report["sequence_gaps" if reason == "sequence" else "parse_errors"] >= 1
    if case in ("drop", "swap", "U", "cut"):
        # a broken chain withdraws the book and asks for a fresh snapshot
        seq_gaps = [g for g in gaps if g.reason == "sequence"]
        assert seq_gaps and seq_gaps[0].symbol == "NKN-USDT"
        assert report["resyncs"] >= 1
        books = [r for r in out if isinstance(r, Book) and r.symbol == "NKN-USDT"]
        assert all(b.ts_recv < seq_gaps[0].ts_recv for b in books)
    else:  # a duplicate is ignored, the book stays right and keeps flowing
        assert report["resyncs"] == 4  # only the first-diff snapshot request per symbol
        assert sum(isinstance(r, Book) and r.symbol == "NKN-USDT" for r in out) == 150
