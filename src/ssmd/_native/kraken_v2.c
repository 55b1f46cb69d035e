/* Kraken v2 (and `sim`) book updates, whole frame in one call.
 *
 * `{"channel":"book","type":"update","data":[{"symbol", "bids", "asks", "checksum",
 * "timestamp"}]}` with prices and quantities as JSON numbers; the reference is
 * kraken_v2.py (`KrakenV2Normalizer._book`, `_V2Book.apply` and `.checksum`). Taken:
 * one entry, members once each in any order, levels `{"price", "qty"}` as plain JSON
 * numbers (no sign or exponent, at most 9 decimals, within int64 at 1e-9), the time in
 * Kraken's `YYYY-MM-DDTHH:MM:SS.ffffffZ`, an integer checksum, a valid book at a
 * precision of at most 9 decimals. Snapshots stay in Python (one per subscription). */

#include "common.h"

typedef struct {
    Slice symbol, stamp;
    Rows r; /* bids then asks, each in wire order (the reference applies bids first) */
    Py_ssize_t nbids;
    unsigned long checksum;
    int has_checksum, has_stamp;
} Update2;

/* A JSON number as 1e-9 fixed point: `0` or `[1-9][0-9]*`, then `.` and 1..9 digits. */
static int number(Cur *c, long long *out) {
    unsigned long long whole = 0, frac = 0, scale = 1000000000ULL;
    if (c->p >= c->end)
        return 0;
    if (*c->p == '0') {
        c->p++;
    } else if (*c->p >= '1' && *c->p <= '9') {
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (whole > (unsigned long long)(LLONG_MAX / 1000000000LL))
                return 0;
            whole = whole * 10 + (unsigned)(*c->p++ - '0');
        }
    } else {
        return 0;
    }
    if (eat(c, '.')) {
        int n = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (++n > 9)
                return 0;
            frac = frac * 10 + (unsigned)(*c->p++ - '0');
            scale /= 10;
        }
        if (!n)
            return 0;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E' || *c->p == '.'))
        return 0;
    unsigned long long v = whole * 1000000000ULL;
    if (whole > (unsigned long long)(LLONG_MAX / 1000000000LL) || v > (unsigned long long)LLONG_MAX - frac * scale)
        return 0;
    *out = (long long)(v + frac * scale);
    return 1;
}

/* A JSON integer `0|[1-9][0-9]*` of at most `digits` digits, nothing numeric after it. */
static int integer(Cur *c, int max_digits, unsigned long long *out) {
    const char *start = c->p;
    unsigned long long v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && c->p - start < max_digits)
        v = v * 10 + (unsigned)(*c->p++ - '0');
    if (c->p == start || (c->p - start > 1 && *start == '0') ||
        (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || *c->p == '.' || *c->p == 'e' ||
                           *c->p == 'E')))
        return 0;
    *out = v;
    return 1;
}

/* A JSON scalar we do not read (a ticker's `last`, a trade's `ord_type`): a plain
 * string, a number, true, false or null. Nested values: decline. */
static int skip_scalar(Cur *c) {
    static const char *words[] = {"true", "false", "null"};
    Slice ignored;
    if (c->p >= c->end)
        return 0;
    if (*c->p == '"')
        return str(c, &ignored);
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(c->end - c->p) >= n && memcmp(c->p, words[i], n) == 0) {
            c->p += n;
            return 1;
        }
    }
    eat(c, '-'); /* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (c->p < c->end && *c->p == '0') {
        c->p++;
    } else if (c->p < c->end && *c->p >= '1' && *c->p <= '9') {
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    } else {
        return 0;
    }
    if (eat(c, '.')) {
        const char *start = c->p;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
        if (c->p == start)
            return 0;
    }
    if (eat(c, 'e') || eat(c, 'E')) {
        if (!eat(c, '+'))
            eat(c, '-');
        const char *start = c->p;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
        if (c->p == start)
            return 0;
    }
    return 1;
}

static int key_is(Slice k, const char *name) {
    size_t n = strlen(name);
    return (size_t)k.n == n && memcmp(k.s, name, n) == 0;
}

/* A member an entry parser reads: its name, how (a plain string, a JSON number as fixed
 * point, a JSON integer) and where to. */
typedef struct {
    const char *name;
    enum { M_STR, M_NUMBER, M_INTEGER } kind;
    void *out;
} Member;

/* `{...}` with each listed member at most once (the bitmask of those seen in `*seen`),
 * any other member skipped when it is a scalar; 0: decline. */
static int members(Cur *c, const Member *m, int n, int *seen) {
    Slice k;
    *seen = 0;
    if (!eat(c, '{'))
        return 0;
    do {
        if (!str(c, &k) || !eat(c, ':'))
            return 0;
        int i = 0;
        while (i < n && !key_is(k, m[i].name))
            i++;
        if (i == n) {
            if (!skip_scalar(c))
                return 0;
            continue;
        }
        if (*seen & (1 << i))
            return 0;
        *seen |= 1 << i;
        int ok = m[i].kind == M_STR      ? str(c, (Slice *)m[i].out)
               : m[i].kind == M_NUMBER ? number(c, (long long *)m[i].out)
                                       : integer(c, 18, (unsigned long long *)m[i].out);
        if (!ok)
            return 0;
    } while (eat(c, ','));
    return eat(c, '}');
}


/* `[{"price":N,"qty":N}, ...]` */
static int levels2(Cur *c, Update2 *u, int side) {
    if (!eat(c, '['))
        return 0;
    if (eat(c, ']'))
        return 1;
    do {
        Row *r = new_row(&u->r);
        int seen;
        if (!r)
            return 0;
        r->side = side;
        const Member m[] = {{"price", M_NUMBER, &r->px}, {"qty", M_NUMBER, &r->sz}};
        if (!members(c, m, 2, &seen) || seen != 3 || !r->px)
            return 0;
    } while (eat(c, ','));
    return eat(c, ']');
}

static int entry2(Cur *c, Update2 *u) {
    int seen = 0;
    Slice k;
    if (!eat(c, '{'))
        return 0;
    do {
        if (!str(c, &k) || !eat(c, ':'))
            return 0;
        int bit = key_is(k, "symbol") ? 1 : key_is(k, "bids") ? 2 : key_is(k, "asks") ? 4
                : key_is(k, "checksum") ? 8 : key_is(k, "timestamp") ? 16 : 0;
        if (!bit || (seen & bit))
            return 0;
        seen |= bit;
        if (bit == 1) {
            if (!str(c, &u->symbol))
                return 0;
        } else if (bit == 2 || bit == 4) {
            /* bids must come first in `rows`: asks before bids on the wire are declined */
            if (bit == 2 && (seen & 4))
                return 0;
            if (!levels2(c, u, bit == 2))
                return 0;
            if (bit == 2)
                u->nbids = u->r.nrows;
        } else if (bit == 8) {
            unsigned long long v;
            if (!integer(c, 10, &v) || v > 0xFFFFFFFFULL)
                return 0;
            u->checksum = (unsigned long)v;
            u->has_checksum = 1;
        } else {
            if (!str(c, &u->stamp))
                return 0;
            u->has_stamp = 1;
        }
    } while (eat(c, ','));
    return (seen & 1) && eat(c, '}');
}

/* `{"channel":S,"type":S,"data":[` — Kraken's member order (any other: Python's). */
static int prefix2(Cur *c, Slice *channel, Slice *type) {
    Slice k;
    return eat(c, '{') && str(c, &k) && key_is(k, "channel") && eat(c, ':') && str(c, channel) &&
           eat(c, ',') && str(c, &k) && key_is(k, "type") && eat(c, ':') && str(c, type) &&
           eat(c, ',') && str(c, &k) && key_is(k, "data") && eat(c, ':') && eat(c, '[');
}

static int tail2(Cur *c) {
    return eat(c, ']') && eat(c, '}') && c->p == c->end;
}

/* The timestamp's ns: the whole seconds through the reference's `_ts` (one cached
 * second here), the micros in C. 1 ok, 0 decline, -1 error. */
static char seconds_text[19];

static long long seconds_ns = -1;

static int stamp2(Slice s, PyObject *ts_func, long long *ns) {
    long long micros = 0;
    if (s.n != 27 || s.s[19] != '.' || s.s[26] != 'Z')
        return 0;
    for (int i = 20; i < 26; i++) {
        unsigned d = (unsigned)(s.s[i] - '0');
        if (d > 9)
            return 0;
        micros = micros * 10 + d;
    }
    if (seconds_ns < 0 || memcmp(seconds_text, s.s, 19) != 0) {
        PyObject *text = ascii(s.s, s.n);
        PyObject *got = text ? PyObject_CallOneArg(ts_func, text) : NULL;
        Py_XDECREF(text);
        if (!got) {
            PyErr_Clear(); /* a bad time: the reference reports it */
            return 0;
        }
        int ok = 1;
        long long whole = as_ll(got, &ok);
        Py_DECREF(got);
        if (!ok) {
            PyErr_Clear();
            return 0;
        }
        memcpy(seconds_text, s.s, 19);
        seconds_ns = whole - micros * 1000;
    }
    *ns = seconds_ns + micros * 1000;
    return 1;
}

typedef struct {
    PyObject *levels, *keys, *tokens;
    long long sign;
} Side2;

/* The digits of `value // div` (a level's token part). */
static int put_digits(char *buf, int n, unsigned long long v) {
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        buf[n++] = tmp[--k];
    return n;
}

/* `_V2Book.apply` for one side's rows; evicted levels go to `out` after all rows. */
static int apply2(Side2 *sd, Row *rows, Py_ssize_t n, long long depth, long long pdiv,
                  long long qdiv, PyObject *out) {
    PyObject *evicted = NULL; /* made when a level is first pushed out of the window */
    for (Py_ssize_t i = 0; i < n; i++) {
        Row *r = &rows[i];
        long long key = sd->sign * r->px;
        PyObject *px = PyLong_FromLongLong(r->px), *sz = PyLong_FromLongLong(r->sz);
        PyObject *keyo = px ? PyLong_FromLongLong(key) : NULL, *tok = NULL, *worst = NULL;
        int bad = !sz || !keyo || append_level(out, px, sz) < 0;
        if (bad) {
        } else if (!r->sz) {
            PyObject *had = PyDict_GetItemWithError(sd->levels, px);
            if (had) {
                Py_ssize_t rank = bisect_left(sd->keys, key);
                bad = rank < 0 || PyDict_DelItem(sd->levels, px) < 0 ||
                      PyList_SetSlice(sd->keys, rank, rank + 1, NULL) < 0;
                if (!bad && PyDict_Contains(sd->tokens, keyo) == 1)
                    bad = PyDict_DelItem(sd->tokens, keyo) < 0;
            } else {
                bad = PyErr_Occurred() != NULL;
            }
        } else {
            char buf[48];
            int len = put_digits(buf, 0, (unsigned long long)(r->px / pdiv));
            len = put_digits(buf, len, (unsigned long long)(r->sz / qdiv));
            int has = PyDict_Contains(sd->levels, px);
            bad = has < 0 || !(tok = ascii(buf, len)) || PyDict_SetItem(sd->tokens, keyo, tok) < 0 ||
                  PyDict_SetItem(sd->levels, px, sz) < 0;
            if (!bad && !has) {
                /* insort: bisect_right == bisect_left, the key being absent */
                Py_ssize_t rank = bisect_left(sd->keys, key);
                bad = rank < 0 || PyList_Insert(sd->keys, rank, keyo) < 0;
                Py_ssize_t len_keys = PyList_GET_SIZE(sd->keys);
                if (!bad && depth && len_keys > depth) {
                    PyObject *wkey = Py_NewRef(PyList_GET_ITEM(sd->keys, len_keys - 1));
                    worst = sd->sign < 0 ? PyNumber_Negative(wkey) : Py_NewRef(wkey);
                    bad = !worst || PyList_SetSlice(sd->keys, len_keys - 1, len_keys, NULL) < 0 ||
                          PyDict_DelItem(sd->levels, worst) < 0;
                    if (!bad && PyDict_Contains(sd->tokens, wkey) == 1)
                        bad = PyDict_DelItem(sd->tokens, wkey) < 0;
                    if (!bad) {
                        int ok = 1;
                        as_ll(worst, &ok);
                        PyErr_Clear();
                        if (ok) /* else beyond the wire schema (`publishable`) */
                            bad = (!evicted && !(evicted = PyList_New(0))) ||
                                  append_level(evicted, worst, ZERO) < 0;
                    }
                    Py_DECREF(wkey);
                }
            }
        }
        Py_XDECREF(px);
        Py_XDECREF(sz);
        Py_XDECREF(keyo);
        Py_XDECREF(tok);
        Py_XDECREF(worst);
        if (bad) {
            Py_XDECREF(evicted);
            return -1;
        }
    }
    if (!evicted)
        return 0;
    int rc = PyList_SetSlice(out, PyList_GET_SIZE(out), PyList_GET_SIZE(out), evicted);
    Py_DECREF(evicted);
    return rc;
}

/* The token of a side's i-th level, `tokens[keys[i]]` (borrowed); a KeyError if none. */
static PyObject *top_token(Side2 *sd, Py_ssize_t i, PyObject **tok) {
    *tok = PyDict_GetItemWithError(sd->tokens, PyList_GET_ITEM(sd->keys, i));
    if (!*tok && !PyErr_Occurred())
        PyErr_SetString(PyExc_KeyError, "a top-10 level has no checksum token");
    return *tok;
}

/* The top-10 tokens of a side, joined (`"".join(map(tokens.__getitem__, keys[:10]))`).
 * Tokens are the digits of a price and a qty, so they are copied straight into the bytes;
 * a token that is not short ASCII (a price beyond int64 from Python) takes `joined`. */
static PyObject *top_part(Side2 *sd) {
    char buf[TOP * 48];
    Py_ssize_t used = 0, len, n = PyList_GET_SIZE(sd->keys), top = n < TOP ? n : TOP;
    PyObject *tok;
    for (Py_ssize_t i = 0; i < top; i++) {
        if (!top_token(sd, i, &tok))
            return NULL;
        if (!PyUnicode_Check(tok) || !PyUnicode_IS_ASCII(tok) ||
            (len = PyUnicode_GET_LENGTH(tok)) > 48)
            goto general;
        memcpy(buf + used, PyUnicode_DATA(tok), (size_t)len);
        used += len;
    }
    return PyBytes_FromStringAndSize(buf, used);
general:;
    PyObject *all = PyList_New(top);
    for (Py_ssize_t i = 0; all && i < top; i++) {
        if (!top_token(sd, i, &tok))
            Py_CLEAR(all);
        else
            PyList_SET_ITEM(all, i, Py_NewRef(tok));
    }
    PyObject *part = all ? joined(all) : NULL;
    Py_XDECREF(all);
    return part;
}

/* `_V2Book.checksum` after the update invalidated the sides it had rows for. */
static int checksum2(PyObject *state, Side2 *asks, Side2 *bids, int asks_changed, int bids_changed,
                     unsigned long *crc) {
    int ok = 1;
    long long crc_a = asks_changed ? -1 : get_ll(state, S_crc_a, &ok);
    PyObject *part = bids_changed ? Py_NewRef(Py_None) : PyObject_GetAttr(state, S_bid_part);
    int rc = -1;
    if (!ok || !part)
        goto done;
    if (crc_a < 0) {
        PyObject *a = top_part(asks);
        if (!a)
            goto done;
        crc_a = (long long)crc32(0L, (const Bytef *)PyBytes_AS_STRING(a), (uInt)PyBytes_GET_SIZE(a));
        Py_DECREF(a);
        if (set_ll(state, S_crc_a, (unsigned long)crc_a) < 0)
            goto done;
    }
    if (part == Py_None) {
        Py_SETREF(part, top_part(bids));
        if (!part || PyObject_SetAttr(state, S_bid_part, part) < 0)
            goto done;
    }
    if (!PyBytes_Check(part)) {
        PyErr_SetString(PyExc_TypeError, "_V2Book.bid_part: expected bytes");
        goto done;
    }
    *crc = crc32((uLong)crc_a, (const Bytef *)PyBytes_AS_STRING(part), (uInt)PyBytes_GET_SIZE(part));
    rc = 0;
done:
    Py_XDECREF(part);
    return rc;
}

static int load_side2(PyObject *native, Py_ssize_t at, long long sign, Side2 *sd) {
    sd->levels = PyTuple_GET_ITEM(native, at);
    sd->keys = PyTuple_GET_ITEM(native, at + 1);
    sd->tokens = PyTuple_GET_ITEM(native, at + 2);
    sd->sign = sign;
    return PyDict_Check(sd->levels) && PyList_Check(sd->keys) && PyDict_Check(sd->tokens);
}

/* One book update entry (the data array's only one) applied; see the file comment. */
static PyObject *book2(Cur *c, PyObject *books, PyObject *ts_recv, Ctx *x) {
    Update2 u;
    PyObject *result = NULL, *native = NULL, *out_a = NULL, *out_b = NULL, *ts = NULL;
    init_rows(&u.r);
    u.nbids = 0;
    u.has_checksum = u.has_stamp = 0;
    if (!entry2(c, &u) || !tail2(c))
        goto decline;
    PyObject *symbol = ascii(u.symbol.s, u.symbol.n);
    PyObject *state = symbol ? PyDict_GetItemWithError(books, symbol) : NULL;
    Py_XDECREF(symbol);
    if (!state) {
        if (PyErr_Occurred())
            goto done;
        goto decline;
    }
    PyObject *valid = PyObject_GetAttr(state, S_valid);
    if (!valid)
        goto done;
    int ok = valid == Py_True;
    Py_DECREF(valid);
    if (!ok)
        goto decline;
    if (!(native = PyObject_GetAttr(state, S_native)))
        goto done;
    if (native == Py_None)
        goto decline;
    Side2 asks, bids;
    long long pdiv, qdiv, depth, ts_event = 0;
    ok = PyTuple_Check(native) && PyTuple_GET_SIZE(native) == 9 &&
         load_side2(native, 0, 1, &asks) && load_side2(native, 3, -1, &bids);
    if (ok) {
        pdiv = as_ll(PyTuple_GET_ITEM(native, 6), &ok);
        qdiv = as_ll(PyTuple_GET_ITEM(native, 7), &ok);
        depth = as_ll(PyTuple_GET_ITEM(native, 8), &ok);
    }
    if (!ok || pdiv <= 0 || qdiv <= 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "_V2Book.native: not the expected layout");
        goto done;
    }
    if (u.has_stamp && u.stamp.n && !stamp2(u.stamp, x->ts, &ts_event))
        goto decline;
    /* accepted: bids, then asks, as the reference */
    if (!(out_a = PyList_New(0)) || !(out_b = PyList_New(0)))
        goto done;
    Py_ssize_t nasks = u.r.nrows - u.nbids;
    if ((u.nbids && apply2(&bids, u.r.rows, u.nbids, depth, pdiv, qdiv, out_b) < 0) ||
        (nasks && apply2(&asks, u.r.rows + u.nbids, nasks, depth, pdiv, qdiv, out_a) < 0))
        goto done;
    unsigned long ours = 0;
    if (u.has_checksum) {
        if (checksum2(state, &asks, &bids, nasks > 0, u.nbids > 0, &ours) < 0)
            goto done;
    } else if ((nasks && PyObject_SetAttr(state, S_crc_a, MINUS_ONE) < 0) ||
               (u.nbids && PyObject_SetAttr(state, S_bid_part, Py_None) < 0)) {
        goto done;
    }
    if (!(ts = PyLong_FromLongLong(ts_event)))
        goto done;
    PyObject *kw[5] = {x->feed, x->venue, ts_recv, out_b, out_a};
    result = finish(state, ts, u.has_checksum, u.checksum, NULL, ours, bids.keys, asks.keys, kw,
                    x->book);
    ts = NULL;
    goto done;
decline:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(native);
    Py_XDECREF(out_a);
    Py_XDECREF(out_b);
    Py_XDECREF(ts);
    free_rows(&u.r);
    return result;
}

/* The secmaster's (symbol, iid) of a venue symbol, as `sym_with` finds it when known;
 * 0: not known yet (Python's `sym_with` learns it). */
static int symbol_info(Ctx *x, Slice vs, PyObject **symbol, PyObject **iid) {
    PyObject *key = ascii(vs.s, vs.n);
    if (!key)
        return -1;
    PyObject *info = PyDict_GetItemWithError(x->symbols, key);
    if (!info && !PyErr_Occurred())
        info = PyDict_GetItemWithError(x->defaults, key);
    Py_DECREF(key);
    if (!info)
        return PyErr_Occurred() ? -1 : 0;
    *symbol = PyObject_GetAttr(info, S_symbol);
    *iid = *symbol ? PyObject_GetAttr(info, S_iid) : NULL;
    if (!*iid) {
        Py_CLEAR(*symbol);
        return -1;
    }
    return 1;
}

static PyObject *S_buy, *S_sell, *S_unknown, *EMPTY, *TRADE_KW, *QUOTE_KW;

/* One trade entry (`_trade`): symbol, price, qty, timestamp required; side and trade_id
 * optional. NULL with no error: decline. */
static PyObject *trade2(Cur *c, PyObject *ts_recv, Ctx *x) {
    Slice sym = {0}, side = {"", 0}, stamp = {0};
    long long px = 0, sz = 0, ts_event;
    unsigned long long tid = 0;
    int seen;
    const Member m[] = {{"symbol", M_STR, &sym},       {"price", M_NUMBER, &px},
                        {"qty", M_NUMBER, &sz},        {"timestamp", M_STR, &stamp},
                        {"side", M_STR, &side},        {"trade_id", M_INTEGER, &tid}};
    if (!members(c, m, 6, &seen) || (seen & 15) != 15 || !stamp2(stamp, x->ts, &ts_event))
        return NULL;
    PyObject *symbol, *iid, *record = NULL;
    if (symbol_info(x, sym, &symbol, &iid) <= 0)
        return NULL;
    PyObject *sideo = key_is(side, "buy") ? S_buy : key_is(side, "sell") ? S_sell : S_unknown;
    PyObject *ts = PyLong_FromLongLong(ts_event), *seq = PyLong_FromUnsignedLongLong(tid);
    PyObject *price = PyLong_FromLongLong(px), *size = PyLong_FromLongLong(sz);
    PyObject *trade_id = !seq ? NULL : (seen & 32) ? PyObject_Str(seq) : Py_NewRef(EMPTY);
    if (ts && price && size && trade_id) {
        PyObject *kw[11] = {x->feed, x->venue, symbol, iid, ts, ts_recv, seq, price, size, sideo,
                            trade_id};
        record = PyObject_Vectorcall(x->trade, kw, 0, TRADE_KW);
    }
    Py_DECREF(symbol);
    Py_DECREF(iid);
    Py_XDECREF(ts);
    Py_XDECREF(seq);
    Py_XDECREF(price);
    Py_XDECREF(size);
    Py_XDECREF(trade_id);
    return record;
}

/* One ticker entry (`_ticker`) as a quote: symbol, bid, bid_qty, ask, ask_qty required,
 * timestamp optional; the rest (last, volume, vwap, ...) skipped. */
static PyObject *ticker2(Cur *c, PyObject *ts_recv, Ctx *x) {
    Slice sym = {0}, stamp = {"", 0};
    long long v[4] = {0, 0, 0, 0}, ts_event = 0;
    int seen;
    const Member m[] = {{"symbol", M_STR, &sym},    {"bid", M_NUMBER, &v[0]},
                        {"bid_qty", M_NUMBER, &v[1]}, {"ask", M_NUMBER, &v[2]},
                        {"ask_qty", M_NUMBER, &v[3]}, {"timestamp", M_STR, &stamp}};
    if (!members(c, m, 6, &seen) || (seen & 31) != 31 ||
        (stamp.n && !stamp2(stamp, x->ts, &ts_event)))
        return NULL;
    PyObject *symbol, *iid, *record = NULL, *o[5] = {NULL, NULL, NULL, NULL, NULL};
    if (symbol_info(x, sym, &symbol, &iid) <= 0)
        return NULL;
    int ok = (o[0] = PyLong_FromLongLong(ts_event)) != NULL;
    for (int i = 0; ok && i < 4; i++)
        ok = (o[i + 1] = PyLong_FromLongLong(v[i])) != NULL;
    if (ok) {
        PyObject *kw[10] = {x->feed, x->venue, symbol, iid, o[0], ts_recv, o[1], o[2], o[3], o[4]};
        record = PyObject_Vectorcall(x->quote, kw, 0, QUOTE_KW);
    }
    Py_DECREF(symbol);
    Py_DECREF(iid);
    for (int i = 0; i < 5; i++)
        Py_XDECREF(o[i]);
    return record;
}

/* Every entry of a trade or ticker frame: (3, None, 0, [records], None), or None. */
static PyObject *flow2(Cur *c, PyObject *ts_recv, Ctx *x, int trades) {
    PyObject *records = PyList_New(0);
    if (!records)
        return NULL;
    if (!eat(c, ']')) {
        do {
            PyObject *r = trades ? trade2(c, ts_recv, x) : ticker2(c, ts_recv, x);
            if (!r || PyList_Append(records, r) < 0) {
                Py_XDECREF(r);
                Py_DECREF(records);
                if (PyErr_Occurred())
                    return NULL;
                Py_RETURN_NONE;
            }
            Py_DECREF(r);
        } while (eat(c, ','));
        if (!eat(c, ']')) {
            Py_DECREF(records);
            Py_RETURN_NONE;
        }
    }
    if (!eat(c, '}') || c->p != c->end) {
        Py_DECREF(records);
        Py_RETURN_NONE;
    }
    return outcome(3, Py_None, PyLong_FromLong(0), records, Py_NewRef(Py_None));
}

PyObject *v2_frame(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    const char *p;
    Py_ssize_t n;
    Ctx x;
    Slice channel, type;
    (void)mod;
    int got = entry_args(args, nargs, "v2_frame", &x, &p, &n);
    if (got <= 0)
        return got < 0 ? NULL : Py_NewRef(Py_None);
    Cur c = {p, p + n};
    if (!prefix2(&c, &channel, &type))
        Py_RETURN_NONE;
    if (key_is(channel, "book") && key_is(type, "update"))
        return book2(&c, args[0], args[2], &x);
    if (key_is(channel, "trade") || key_is(channel, "ticker"))
        return flow2(&c, args[2], &x, key_is(channel, "trade"));
    Py_RETURN_NONE;
}

int init_kraken_v2(void) {
    static const char *trade[] = {"feed", "venue", "symbol", "iid", "ts_event", "ts_recv", "seq",
                                  "price", "size", "side", "trade_id"};
    static const char *quote[] = {"feed", "venue", "symbol", "iid", "ts_event", "ts_recv",
                                  "bid_px", "bid_sz", "ask_px", "ask_sz"};
    S_buy = PyUnicode_InternFromString("buy");
    S_sell = PyUnicode_InternFromString("sell");
    S_unknown = PyUnicode_InternFromString("unknown");
    EMPTY = PyUnicode_InternFromString("");
    TRADE_KW = interned_names(trade, 11);
    QUOTE_KW = interned_names(quote, 10);
    return S_buy && S_sell && S_unknown && EMPTY && TRADE_KW && QUOTE_KW;
}
