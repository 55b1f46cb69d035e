"""A Lua 5.4 runtime (lupa) locked down for running customer code.

Why a module of its own: the sandbox is the security boundary of transforms, so every
rule lives here, in one place, next to the reasons. One `LuaSandbox` is one Lua state:
nothing is shared between two sandboxes except stateless Python helpers.

What user code gets (its environment table, not the runtime's `_G`):
`assert error ipairs next pairs select tonumber tostring type rawequal rawlen rawget
rawset getmetatable`, wrapped `pcall xpcall setmetatable`, copies of `string` (no
`dump`; pattern functions cost-capped), `table`, `math`, `utf8`, `coroutine` (hooked),
plus `dec` (exact decimals) and `null`. Not there: `os io require package debug load
loadstring dofile loadfile collectgarbage print python _G`.

Budgets: an instruction budget per call (count hook every `HOOK_EVERY` instructions, also
installed on every coroutine), a wall-time deadline checked by the same hook, and the
state's memory cap (lupa `max_memory`). Budget errors cannot be swallowed by `pcall`.
C functions are not interruptible by a hook, hence the cost cap on Lua patterns.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

from lupa import lua54

LuaError = lua54.LuaError
HOOK_EVERY = 1000
"""Instructions between two hook calls: the granularity of budget and deadline checks."""
MAX_DECIMAL_CHARS = 64
PATTERN_COST = 10**8
"""len(subject) ** (quantifiers + 1) above this is refused: Lua patterns backtrack in C."""


@dataclass(frozen=True)
class Limits:
    """Per-call instruction budget and wall time; per-state memory."""

    instructions: int = 1_000_000
    memory: int = 32 * 2**20
    timeout: float = 0.25
    load_instructions: int = 5_000_000
    load_timeout: float = 1.0


class SandboxError(Exception):
    """User code failed: `kind` is `syntax`, `runtime`, `budget`, `timeout`, `memory` or
    `output`; `message` is Lua's message (with `name:line:` where Lua gives one)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# ---- exact decimals for Lua (Python Decimal, strings in and out) ---------------------

_CTX = Context(prec=60, rounding=ROUND_HALF_EVEN, Emax=10**6, Emin=-(10**6))


def _dec(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"not a decimal: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        raise ValueError(f"not a decimal string: {value!r} (floats are not exact)")
    if len(value) > MAX_DECIMAL_CHARS:
        raise ValueError(f"decimal longer than {MAX_DECIMAL_CHARS} characters")
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {value!r}") from None
    if not out.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return out


def canonical(value: Decimal) -> str:
    """Canonical form, as on the wire: no exponent, no trailing zeros, '0' for zero."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _places(places: Any) -> Decimal:
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 18:
        raise ValueError(f"places must be an integer 0..18, not {places!r}")
    return Decimal(1).scaleb(-places)


def _binary(op: str):
    def fn(a: Any, b: Any) -> str:
        x, y = _dec(a), _dec(b)
        return canonical(getattr(_CTX, op)(x, y))

    fn.__name__ = op
    return fn


def _div(a: Any, b: Any, places: Any = 9) -> str:
    x, y = _dec(a), _dec(b)
    if y == 0:
        raise ValueError("decimal division by zero")
    return canonical(_CTX.divide(x, y).quantize(_places(places), context=_CTX))


def _round(a: Any, places: Any = 0) -> str:
    return canonical(_dec(a).quantize(_places(places), context=_CTX))


def _cmp(a: Any, b: Any) -> int:
    x, y = _dec(a), _dec(b)
    return (x > y) - (x < y)


def _norm(a: Any) -> str:
    return canonical(_dec(a))


def _neg(a: Any) -> str:
    return canonical(-_dec(a))


def _abs(a: Any) -> str:
    return canonical(abs(_dec(a)))


DEC_FUNCTIONS = {
    "add": _binary("add"),
    "sub": _binary("subtract"),
    "mul": _binary("multiply"),
    "div": _div,
    "round": _round,
    "cmp": _cmp,
    "norm": _norm,
    "neg": _neg,
    "abs": _abs,
}


def _has_none(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or (type(v) in (dict, list) and _has_none(v)) for v in value.values())
    if isinstance(value, list):
        return any(v is None or (type(v) in (dict, list) and _has_none(v)) for v in value)
    return value is None


def _deny_attributes(obj: Any, name: Any, is_setting: bool) -> Any:
    """Lua may call the Python helpers it is given, never look inside them."""
    raise AttributeError("attribute access is not allowed in transforms")


# ---- the privileged prelude -------------------------------------------------------------

_PRELUDE = r"""
local now, dec_py, HOOK_EVERY, PATTERN_COST = ...
local sethook, getinfo = debug.sethook, debug.getinfo
local rawpcall, rawxpcall, rawsetmt, rawgetmt = pcall, xpcall, setmetatable, getmetatable
local co_create, co_resume, co_status = coroutine.create, coroutine.resume, coroutine.status
local load, type, error, tostring, select = load, type, error, tostring, select
local BUDGET, TIMEOUT = {}, {}
local state = {left = 0, deadline = 0, dead = nil}

local function hook()
  state.left = state.left - HOOK_EVERY
  if state.dead then error(state.dead, 0) end
  if state.left < 0 then state.dead = BUDGET; error(BUDGET, 0) end
  if now() > state.deadline then state.dead = TIMEOUT; error(TIMEOUT, 0) end
end
sethook(hook, "", HOOK_EVERY)

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function rethrow(ok, ...)
  if state.dead then error(state.dead, 0) end
  return ok, ...
end
local function safe_pcall(f, ...) return rethrow(rawpcall(f, ...)) end
local function safe_xpcall(f, h, ...) return rethrow(rawxpcall(f, h, ...)) end
local function safe_setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("__gc metamethods are not allowed in transforms", 2)
  end
  return rawsetmt(t, mt)
end

local safe_co = copy(coroutine)
safe_co.create = function(f)
  local co = co_create(f)
  sethook(co, hook, "", HOOK_EVERY)
  return co
end
safe_co.wrap = function(f)
  local co = safe_co.create(f)
  return function(...)
    local r = table.pack(co_resume(co, ...))
    if state.dead then error(state.dead, 0) end
    if r[1] then return table.unpack(r, 2, r.n) end
    error(r[2], 0)
  end
end

local safe_string = copy(string)
safe_string.dump = nil
local function count_quantifiers(p)
  local n, i = 0, 1
  while i <= #p do
    local c = p:sub(i, i)
    if c == "%" then i = i + 1
    elseif c == "*" or c == "+" or c == "-" or c == "?" then n = n + 1 end
    i = i + 1
  end
  return n
end
local function capped(fn)
  return function(s, p, ...)
    if type(s) == "string" and type(p) == "string" then
      if (#s + 1) ^ (count_quantifiers(p) + 1) > PATTERN_COST then
        error("pattern too expensive for a subject of " .. #s .. " bytes", 2)
      end
    end
    return fn(s, p, ...)
  end
end
for _, name in ipairs({"find", "match", "gmatch", "gsub"}) do
  safe_string[name] = capped(string[name])
end
local smt = rawgetmt("")
smt.__index = safe_string
smt.__metatable = false

local null = rawsetmt({}, {__metatable = false, __tostring = function() return "null" end,
  __newindex = function() error("null is read-only", 2) end})
local dec = {}
for k, v in pairs(dec_py) do dec[k] = v end

local function new_env()
  return {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    select = select, tonumber = tonumber, tostring = tostring, type = type,
    rawequal = rawequal, rawlen = rawlen, rawget = rawget, rawset = rawset,
    getmetatable = rawgetmt, setmetatable = safe_setmetatable,
    pcall = safe_pcall, xpcall = safe_xpcall, unpack = table.unpack,
    string = safe_string, table = copy(table), math = copy(math), utf8 = copy(utf8),
    coroutine = safe_co, dec = copy(dec), null = null,
    _VERSION = _VERSION,
  }
end

local function describe(err)
  if err == BUDGET then return "budget", "instruction budget exceeded" end
  if err == TIMEOUT then return "timeout", "wall-time limit exceeded" end
  if type(err) == "string" then
    if err == "not enough memory" then return "memory", "memory limit exceeded" end
    return "runtime", err
  end
  local ok, text = rawpcall(tostring, err)
  return "runtime", ok and type(text) == "string" and text or "(error object)"
end

local function arm(budget, seconds)
  state.dead = nil
  state.left = budget
  state.deadline = now() + seconds
end

local function disarm()
  state.left = math.maxinteger
  state.deadline = math.huge
  state.dead = nil
end
disarm()

local box = {}

-- Compile `source` (text only) into a fresh environment and run its top level.
function box.load(source, name, budget, seconds)
  local env = new_env()
  local chunk, err = load(source, "=" .. name, "t", env)
  if not chunk then return nil, "syntax", err end
  arm(budget, seconds)
  local ok, e = rawpcall(chunk)
  local dead = state.dead
  disarm()
  if dead then e = dead end
  if not ok then return nil, describe(e) end
  return env
end

-- Call env[fname](arg) under the budget: true, result | false, kind, message.
function box.call(env, fname, arg, budget, seconds)
  local fn = rawget(env, fname)
  if type(fn) ~= "function" then
    return false, "runtime", "no function '" .. fname .. "' defined"
  end
  arm(budget, seconds)
  local ok, res = rawpcall(fn, arg)
  local dead = state.dead
  disarm()
  if dead then ok, res = false, dead end
  if not ok then return false, describe(res) end
  return true, res
end

box.null = null
function box.is_null(x) return rawequal(x, null) end
return box
"""


class LuaSandbox:
    """One locked-down Lua 5.4 state with a memory cap."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.runtime = lua54.LuaRuntime(
            max_memory=self.limits.memory,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attributes,
            unpack_returned_tuples=True,
        )
        dec = self.runtime.table_from(DEC_FUNCTIONS)
        prelude = self.runtime.execute(
            _PRELUDE, time.monotonic, dec, HOOK_EVERY, PATTERN_COST, name="=ssmd-sandbox"
        )
        self._box = prelude
        self.null = prelude.null
        self.is_null = prelude.is_null

    def load(self, source: str, name: str) -> Any:
        """Compile and run `source`'s top level; its environment table (the globals the
        code defined). Raises SandboxError (`syntax` errors carry `name:line:`)."""
        lim = self.limits
        out = self._guard(
            lambda: self._box.load(source, name, lim.load_instructions, lim.load_timeout)
        )
        if not isinstance(out, tuple):
            return out
        _, kind, message = out
        raise SandboxError(kind, str(message))

    def call(self, env: Any, fname: str, arg: Any) -> Any:
        """`env[fname](arg)` under the per-call budgets; its first return value."""
        lim = self.limits
        out = self._guard(lambda: self._box.call(env, fname, arg, lim.instructions, lim.timeout))
        if out[0] is True:
            return out[1] if len(out) > 1 else None
        raise SandboxError(str(out[1]), str(out[2]))

    def table(self, value: dict[str, Any] | list[Any]) -> Any:
        """A Lua table from JSON-like builtins (lists become sequences 1..n)."""
        if _has_none(value):
            return self._guard(lambda: self._slow_table(value))
        return self._guard(lambda: self.runtime.table_from(value, recursive=True))

    def _slow_table(self, value: Any) -> Any:
        """Like table_from, but JSON null becomes the `null` sentinel (nil would lose the key)."""
        if value is None:
            return self.null
        if isinstance(value, dict):
            out = self.runtime.table()
            for k, v in value.items():
                out[k] = self._slow_table(v)
            return out
        if isinstance(value, list):
            out = self.runtime.table()
            for i, v in enumerate(value, 1):
                out[i] = self._slow_table(v)
            return out
        return value

    def memory_used(self) -> int:
        return int(self.runtime.get_memory_used() or 0)

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except lua54.LuaMemoryError:
            self._collect()
            raise SandboxError("memory", "memory limit exceeded") from None
        except MemoryError:
            self._collect()
            raise SandboxError("memory", "memory limit exceeded") from None
        except LuaError as exc:
            raise SandboxError("runtime", str(exc)) from None

    def _collect(self) -> None:
        # a collection that fails leaves the state as it was
        with contextlib.suppress(Exception):
            self.runtime.gccollect()
