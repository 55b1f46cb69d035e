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

static int key_is(Slice k, const char *name) {
    size_t n = strlen(name);
    return (size_t)k.n == n && memcmp(k.s, name, n) == 0;
}

/* `[{"price":N,"qty":N}, ...]` */
static int levels2(Cur *c, Update2 *u, int side) {
    if (!eat(c, '['))
        return 0;
    if (eat(c, ']'))
        return 1;
    do {
        Row *r = new_row(&u->r);
        Slice k;
        int seen = 0;
        if (!r || !eat(c, '{'))
            return 0;
        r->side = side;
        do {
            if (!str(c, &k) || !eat(c, ':'))
                return 0;
            int bit = key_is(k, "price") ? 1 : key_is(k, "qty") ? 2 : 0;
            if (!bit || (seen & bit) || !number(c, bit == 1 ? &r->px : &r->sz))
                return 0;
            seen |= bit;
        } while (eat(c, ','));
        if (seen != 3 || !eat(c, '}') || !r->px)
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
            const char *start = c->p;
            unsigned long long v = 0;
            while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && c->p - start < 10)
                v = v * 10 + (unsigned)(*c->p++ - '0');
            if (c->p == start || (c->p - start > 1 && *start == '0') || v > 0xFFFFFFFFULL ||
                (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || *c->p == '.' ||
                                   *c->p == 'e' || *c->p == 'E')))
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

static int frame2(const char *p, Py_ssize_t n, Update2 *u) {
    Cur c = {p, p + n};
    int seen = 0;
    Slice k, v;
    if (!eat(&c, '{'))
        return 0;
    do {
        if (!str(&c, &k) || !eat(&c, ':'))
            return 0;
        int bit = key_is(k, "channel") ? 1 : key_is(k, "type") ? 2 : key_is(k, "data") ? 4 : 0;
        if (!bit || (seen & bit))
            return 0;
        seen |= bit;
        if (bit == 4) {
            if (!eat(&c, '[') || !entry2(&c, u) || !eat(&c, ']'))
                return 0;
        } else if (!str(&c, &v) || !key_is(v, bit == 1 ? "book" : "update")) {
            return 0;
        }
    } while (eat(&c, ','));
    return seen == 7 && eat(&c, '}') && c.p == c.end;
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
    PyObject *evicted = PyList_New(0);
    if (!evicted)
        return -1;
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
                            bad = append_level(evicted, worst, ZERO) < 0;
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
            Py_DECREF(evicted);
            return -1;
        }
    }
    int rc = PyList_SetSlice(out, PyList_GET_SIZE(out), PyList_GET_SIZE(out), evicted);
    Py_DECREF(evicted);
    return rc;
}

/* The top-10 tokens of a side, joined (`"".join(map(tokens.__getitem__, keys[:10]))`). */
static PyObject *top_part(Side2 *sd) {
    PyObject *top = PyList_New(0);
    if (!top)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(sd->keys);
    for (Py_ssize_t i = 0; i < n && i < TOP; i++) {
        PyObject *tok = PyDict_GetItemWithError(sd->tokens, PyList_GET_ITEM(sd->keys, i));
        if (!tok) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_KeyError, "a top-10 level has no checksum token");
            Py_DECREF(top);
            return NULL;
        }
        if (PyList_Append(top, tok) < 0) {
            Py_DECREF(top);
            return NULL;
        }
    }
    PyObject *part = joined(top);
    Py_DECREF(top);
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

PyObject *v2_book(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    Update2 u;
    const char *p;
    Py_ssize_t n;
    PyObject *result = NULL, *native = NULL, *out_a = NULL, *out_b = NULL, *ts = NULL;
    (void)mod;
    if (nargs != 7 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "v2_book(books: dict, payload, ts_recv, feed, venue, Book, ts)");
        return NULL;
    }
    if (PyBytes_Check(args[1])) {
        p = PyBytes_AS_STRING(args[1]);
        n = PyBytes_GET_SIZE(args[1]);
    } else if (PyUnicode_Check(args[1]) && PyUnicode_IS_ASCII(args[1])) {
        p = (const char *)PyUnicode_DATA(args[1]);
        n = PyUnicode_GET_LENGTH(args[1]);
    } else {
        Py_RETURN_NONE;
    }
    init_rows(&u.r);
    u.nbids = 0;
    u.has_checksum = u.has_stamp = 0;
    if (!frame2(p, n, &u))
        goto decline;
    PyObject *symbol = ascii(u.symbol.s, u.symbol.n);
    PyObject *state = symbol ? PyDict_GetItemWithError(args[0], symbol) : NULL;
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
    if (u.has_stamp && u.stamp.n && !stamp2(u.stamp, args[6], &ts_event))
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
    PyObject *kw[5] = {args[3], args[4], args[2], out_b, out_a};
    result = finish(state, ts, u.has_checksum, u.checksum, NULL, ours, bids.keys, asks.keys, kw,
                    args[5]);
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
