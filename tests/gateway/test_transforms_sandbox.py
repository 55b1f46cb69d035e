"""Sandbox escape attempts: every one is contained and reported as a TransformError."""

from __future__ import annotations

import time

import pytest

from ssmd.gateway.transforms import CompiledTransform, Limits, TransformError

REC = {"type": "trade", "venue": "sim", "symbol": "BTC-USD", "ts_recv": 1, "price": "1.5"}
OK = "function transform(r) return r end"


def _fails(body: str, kind: str = "runtime", limits: Limits | None = None) -> TransformError:
    t = CompiledTransform("evil", f"function transform(r)\n{body}\nreturn r end", limits)
    with pytest.raises(TransformError) as info:
        t.apply(REC)
    assert info.value.kind == kind, info.value
    assert info.value.name == "evil"
    # the instance survives its own failure
    t2 = CompiledTransform("after", OK, limits)
    assert t2.apply(REC) == REC
    return info.value


@pytest.mark.parametrize(
    "body",
    [
        "os.execute('touch /tmp/ssmd-pwned')",
        "local f = io.open('/etc/passwd') r.x = f:read('a')",
        "require('os')",
        "package.loadlib('libc.so.6', 'system')",
        "debug.getregistry()",
        "debug.sethook()",
        "load(string.dump(function() end))",
        "r.x = ('').dump(function() end)",
        "loadstring('return 1')",
        "dofile('/etc/passwd')",
        "loadfile('/etc/passwd')",
        "collectgarbage('stop')",
        "python.eval('1')",
        "_G.os.exit()",
        "print('hello')",
    ],
)
def test_forbidden_globals(body: str) -> None:
    err = _fails(body)
    assert "nil value" in err.lua_message


def test_no_file_is_created() -> None:
    import os

    _fails("os.execute('touch /tmp/ssmd-pwned')")
    assert not os.path.exists("/tmp/ssmd-pwned")


def test_getmetatable_of_string_is_protected() -> None:
    err = _fails("getmetatable('').__index.upper = function() return 'pwned' end")
    assert "boolean" in err.lua_message


def test_string_metatable_is_per_transform() -> None:
    # Even rawset on the string library copy only changes this transform's own state.
    evil = CompiledTransform(
        "evil", "string.upper = function() return 'pwned' end\n" + OK.replace("r end", "r end")
    )
    good = CompiledTransform(
        "good", "function transform(r) r.symbol = r.symbol:upper() return r end"
    )
    evil.apply(REC)
    assert good.apply(dict(REC, symbol="btc-usd"))["symbol"] == "BTC-USD"


def test_python_helpers_are_opaque() -> None:
    err = _fails("r.x = dec.add.__globals__")
    assert "attribute access is not allowed" in err.lua_message
    _fails("r.x = dec.add.__class__.__subclasses__()")


def test_gc_metamethods_refused() -> None:
    err = _fails("setmetatable({}, {__gc = function() while true do end end})")
    assert "__gc" in err.lua_message


def test_infinite_loop_hits_instruction_budget() -> None:
    start = time.monotonic()
    err = _fails("while true do end", "budget")
    assert err.lua_message == "instruction budget exceeded"
    assert time.monotonic() - start < 2


def test_pcall_cannot_swallow_the_budget() -> None:
    _fails("while true do pcall(function() while true do end end) end", "budget")
    _fails("while true do xpcall(function() while true do end end, function() end) end", "budget")
    _fails("for i = 1, 10 do pcall(error, 'x') end while true do end", "budget")


def test_coroutines_are_budgeted() -> None:
    _fails("coroutine.wrap(function() while true do end end)()", "budget")
    body = "local co = coroutine.create(function() while true do end end)\n"
    body += "while true do coroutine.resume(co) end"
    _fails(body, "budget")


def test_wall_time_limit() -> None:
    limits = Limits(instructions=10**12, timeout=0.05)
    start = time.monotonic()
    err = _fails("while true do end", "timeout", limits)
    assert err.lua_message == "wall-time limit exceeded"
    assert time.monotonic() - start < 2


def test_top_level_loop_is_budgeted_at_load() -> None:
    with pytest.raises(TransformError) as info:
        CompiledTransform("evil", "while true do end\n" + OK)
    assert info.value.kind == "budget"


def test_memory_bomb_string_rep() -> None:
    err = _fails("local s = string.rep('x', 2^28)", "memory")
    assert err.lua_message == "memory limit exceeded"


def test_memory_bomb_doubling() -> None:
    _fails("local t, s = {}, 'x' for i = 1, 64 do s = s .. s; t[i] = s end", "memory")


def test_memory_bomb_table_growth() -> None:
    limits = Limits(instructions=10**9, memory=8 * 2**20, timeout=5)
    _fails("local t = {} for i = 1, 1e9 do t[i] = {i, i, i} end", "memory", limits)


def test_memory_recovers_after_a_bomb() -> None:
    t = CompiledTransform(
        "bomb",
        "function transform(r) if r.symbol == 'X' then local s = string.rep('x', 2^28) end"
        " return r end",
    )
    with pytest.raises(TransformError):
        t.apply(dict(REC, symbol="X"))
    assert t.apply(REC) == REC


def test_expensive_pattern_refused() -> None:
    err = _fails("local s = string.rep('a', 5000) r.x = s:find('.-.-.-.-x')")
    assert "pattern too expensive" in err.lua_message
    # short subjects and simple patterns are fine
    t = CompiledTransform(
        "ok", "function transform(r) r.base = r.symbol:match('^(%w+)%-') return r end"
    )
    assert t.apply(REC)["base"] == "BTC"


def test_one_failure_does_not_affect_another() -> None:
    evil = CompiledTransform("evil", "function transform(r) while true do end end")
    good = CompiledTransform("good", "n = 0 function transform(r) n = n + 1 r.n = n return r end")
    assert good.apply(REC)["n"] == 1
    for _ in range(3):
        with pytest.raises(TransformError):
            evil.apply(REC)
    assert good.apply(REC)["n"] == 2


def test_globals_are_not_shared_between_transforms() -> None:
    a = CompiledTransform("a", "secret = 'A-data' function transform(r) return r end")
    b = CompiledTransform("b", "function transform(r) r.leak = secret return r end")
    a.apply(REC)
    assert "leak" not in b.apply(REC)


def test_load_is_text_only_and_absent() -> None:
    # `load` is not in the environment at all, so neither bytecode nor text can be loaded
    _fails("local f = load('return 1')")
