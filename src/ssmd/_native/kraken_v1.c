/* Kraken v1 book frames (snapshots and updates), whole frame in one call: decode,
 * apply, checksum, record.
 *
 * Why: a v1 book update is ~100 bytes of JSON and one or two levels; in Python the
 * per-level parse, the sorted-key upkeep and the top-10 checksum tokens cost several
 * times the decode of the frame, and a 1000-level snapshot ~1 ms (bench/RESULTS.md).
 *
 * The reference is kraken_v1.py (`_book`, `_snapshot`, `_apply_rows`, `_KState`); the
 * contract is common.h's. Taken: compact JSON, plain ASCII strings, every level at the
 * pair's wire precision and within int64, `seconds.micros` times, a snapshot strictly
 * best first with no empty level, an update to a valid book without off-precision
 * levels; the structures changed are the L2Book's level dicts and sorted keys, each
 * side's top-10 prices and checksum tokens, and the cached CRC parts.
 */
#include "common.h"

typedef struct {
    Rows r;
    Slice checksum, name, pair;
    int has_checksum, snapshot;
} Frame;

/* `[[price, qty, time(, "r")], ...]` */
static int rows(Cur *c, Frame *f, int side) {
    if (!eat(c, '['))
        return 0;
    if (eat(c, ']'))
        return 1;
    do {
        Row *r = new_row(&f->r);
        Slice flag;
        if (!r)
            return 0;
        r->side = side;
        if (!eat(c, '[') || !str(c, &r->price) || !eat(c, ',') || !str(c, &r->qty) ||
            !eat(c, ',') || !str(c, &r->stamp))
            return 0;
        if (eat(c, ',') && !str(c, &flag)) /* the republish flag */
            return 0;
        if (!eat(c, ']'))
            return 0;
    } while (eat(c, ','));
    return eat(c, ']');
}

/* An update body (members "a", "b", "c") or a snapshot body ("as", "bs"), each once. */
static int body(Cur *c, Frame *f) {
    int seen = 0;
    Slice key;
    if (!eat(c, '{'))
        return 0;
    do {
        if (!str(c, &key) || !eat(c, ':'))
            return 0;
        int bit = 0;
        if (key.n == 1)
            bit = key.s[0] == 'a' ? 1 : key.s[0] == 'b' ? 2 : key.s[0] == 'c' ? 4 : 0;
        else if (key.n == 2 && key.s[1] == 's')
            bit = key.s[0] == 'a' ? 8 : key.s[0] == 'b' ? 16 : 0;
        if (!bit || (seen & bit))
            return 0;
        seen |= bit;
        if (bit == 4) {
            if (!str(c, &f->checksum))
                return 0;
            f->has_checksum = 1;
        } else if (!rows(c, f, (bit & (2 | 16)) != 0)) {
            return 0;
        }
    } while (eat(c, ','));
    if (seen & (8 | 16)) {
        if ((seen & 7) || f->snapshot || f->r.nrows == 0)
            return 0;
        f->snapshot = 1;
    } else if (!seen) {
        return 0;
    }
    return eat(c, '}');
}

/* `[channelID, body(, body), "book-N", "PAIR"]` and nothing after. */
static int frame(const char *p, Py_ssize_t n, Frame *f) {
    Cur c = {p, p + n};
    if (!eat(&c, '[') || c.p >= c.end || *c.p < '0' || *c.p > '9')
        return 0;
    while (c.p < c.end && *c.p >= '0' && *c.p <= '9')
        c.p++;
    if (!eat(&c, ',') || !body(&c, f) || !eat(&c, ','))
        return 0;
    if (c.p < c.end && *c.p == '{' && (f->snapshot || !body(&c, f) || f->snapshot || !eat(&c, ',')))
        return 0;
    if (!str(&c, &f->name) || !eat(&c, ',') || !str(&c, &f->pair) || !eat(&c, ']'))
        return 0;
    return c.p == c.end && f->name.n >= 4 && memcmp(f->name.s, "book", 4) == 0;
}

/* -- numbers --------------------------------------------------------------------------- */

/* A wire decimal at exactly `dec` decimals (digits '.' digits) as its digit value, at
 * most `max`; its digits without the '.' and leading zeros are appended to the token. */
static int digits(Slice s, long long dec, unsigned long long max, unsigned long long *out,
                  Row *r) {
    Py_ssize_t dot = s.n - dec - 1;
    unsigned long long v = 0;
    if (dot < 1)
        return 0;
    for (Py_ssize_t i = 0; i < s.n; i++) {
        if (i == dot) {
            if (s.s[i] != '.')
                return 0;
            continue;
        }
        unsigned d = (unsigned)(s.s[i] - '0');
        if (d > 9 || v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
        if (v) {
            if (r->ntoken >= TOKEN)
                return 0;
            r->token[r->ntoken++] = s.s[i];
        }
    }
    *out = v;
    return 1;
}

/* Kraken's '1618678123.481570' as ns; only the 6-decimal shape sent today. */
static int stamp_ns(Slice s, long long *ns) {
    unsigned long long v = 0;
    if (s.n != 17 || s.s[10] != '.')
        return 0;
    for (int i = 0; i < 17; i++) {
        if (i == 10)
            continue;
        unsigned d = (unsigned)(s.s[i] - '0');
        if (d > 9)
            return 0;
        v = v * 10 + d;
    }
    if (v > (unsigned long long)(LLONG_MAX / 1000))
        return 0;
    *ns = (long long)v * 1000;
    return 1;
}

/* Python's str ordering, for ASCII: bytes, then length. */
static int later(Slice a, Slice b) {
    Py_ssize_t n = a.n < b.n ? a.n : b.n;
    int cmp = memcmp(a.s, b.s, (size_t)n);
    return cmp > 0 || (cmp == 0 && a.n > b.n);
}

/* Every row parsed at the precision (and within int64), and the newest time; 0: decline. */
static int parse_rows(Frame *f, long long pdec, long long qdec, long long pmul, long long qmul,
                      long long *ts_event) {
    unsigned long long pmax = (unsigned long long)(LLONG_MAX / pmul);
    unsigned long long qmax = (unsigned long long)(LLONG_MAX / qmul);
    Slice newest = {"", 0};
    for (Py_ssize_t i = 0; i < f->r.nrows; i++) {
        Row *r = &f->r.rows[i];
        unsigned long long pi, qi;
        r->ntoken = 0;
        if (!digits(r->price, pdec, pmax, &pi, r) || !pi || !digits(r->qty, qdec, qmax, &qi, r))
            return 0;
        r->px = (long long)pi * pmul;
        r->sz = (long long)qi * qmul;
        if (later(r->stamp, newest))
            newest = r->stamp;
    }
    *ts_event = 0;
    return !newest.n || stamp_ns(newest, ts_event);
}

typedef struct {
    PyObject *top, *levels, *keys, *prices, *tokens, *odd;
    long long sign;
    int touched;
} Side;

typedef struct {
    PyObject *state, *native;
    Side asks, bids;
    long long pdec, qdec, pmul, qmul, depth;
} Book;

/* `_KState.native`: (asks top, bids top, asks loop, bids loop, price decimals, qty
 * decimals, price scale, qty scale, depth); loop = (levels, keys, prices, tokens, odd,
 * sign). 1 loaded, 0 None (off the fast precision), -1 error. */
static int load_side(PyObject *top, PyObject *loop, Side *sd) {
    if (!PyTuple_Check(loop) || PyTuple_GET_SIZE(loop) != 6)
        return 0;
    sd->top = top;
    sd->levels = PyTuple_GET_ITEM(loop, 0);
    sd->keys = PyTuple_GET_ITEM(loop, 1);
    sd->prices = PyTuple_GET_ITEM(loop, 2);
    sd->tokens = PyTuple_GET_ITEM(loop, 3);
    sd->odd = PyTuple_GET_ITEM(loop, 4);
    int ok = 1;
    sd->sign = as_ll(PyTuple_GET_ITEM(loop, 5), &ok);
    sd->touched = 0;
    return ok && PyDict_Check(sd->levels) && PyList_Check(sd->keys) && PyList_Check(sd->prices) &&
           PyList_Check(sd->tokens) && PyDict_Check(sd->odd) && (sd->sign == 1 || sd->sign == -1);
}

static int load_book(PyObject *state, Book *b) {
    b->state = state;
    b->native = PyObject_GetAttr(state, S_native);
    if (!b->native)
        return -1;
    if (b->native == Py_None)
        return 0;
    PyObject *t = b->native;
    int ok = PyTuple_Check(t) && PyTuple_GET_SIZE(t) == 9;
    if (ok) {
        ok = load_side(PyTuple_GET_ITEM(t, 0), PyTuple_GET_ITEM(t, 2), &b->asks) &&
             load_side(PyTuple_GET_ITEM(t, 1), PyTuple_GET_ITEM(t, 3), &b->bids);
        b->pdec = as_ll(PyTuple_GET_ITEM(t, 4), &ok);
        b->qdec = as_ll(PyTuple_GET_ITEM(t, 5), &ok);
        b->pmul = as_ll(PyTuple_GET_ITEM(t, 6), &ok);
        b->qmul = as_ll(PyTuple_GET_ITEM(t, 7), &ok);
        b->depth = as_ll(PyTuple_GET_ITEM(t, 8), &ok);
    }
    if (!ok || b->pmul <= 0 || b->qmul <= 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "_KState.native: not the expected layout");
        return -1;
    }
    return 1;
}

/* The token of a level that moved up into the top 10 (`_KState.token`), in C when the
 * level fits int64. */
static PyObject *moved_token(Book *b, Side *sd, PyObject *px, PyObject *sz) {
    int ok = 1;
    long long p = as_ll(px, &ok), s = as_ll(sz, &ok);
    if (ok && p >= 0 && s >= 0)
        return PyUnicode_FromFormat("%lld%lld", p / b->pmul, s / b->qmul);
    PyErr_Clear();
    return PyObject_CallMethodObjArgs(b->state, S_token, sd->odd, px, sz, NULL);
}

/* One level of `_apply_rows`: the same steps in the same order. */
static int apply_row(Book *b, Side *sd, Row *r, PyObject *out) {
    long long key = sd->sign * r->px;
    Py_ssize_t rank = bisect_left(sd->keys, key);
    int rc = -1;
    PyObject *px = PyLong_FromLongLong(r->px), *sz = PyLong_FromLongLong(r->sz);
    PyObject *tok = NULL, *keyo = NULL, *worst = NULL;
    if (rank == -2 || !px || !sz || append_level(out, px, sz) < 0)
        goto done;
    if (r->sz) {
        int has = PyDict_Contains(sd->levels, px);
        if (has < 0 || PyDict_SetItem(sd->levels, px, sz) < 0)
            goto done;
        if (!has) {
            if (!(keyo = PyLong_FromLongLong(key)) || PyList_Insert(sd->keys, rank, keyo) < 0)
                goto done;
            Py_ssize_t n = PyList_GET_SIZE(sd->keys);
            if (b->depth && n > b->depth) { /* the venue drops its worst silently */
                PyObject *wkey = PyList_GET_ITEM(sd->keys, n - 1);
                worst = sd->sign < 0 ? PyNumber_Negative(wkey) : Py_NewRef(wkey);
                if (!worst || PyList_SetSlice(sd->keys, n - 1, n, NULL) < 0 ||
                    PyDict_DelItem(sd->levels, worst) < 0)
                    goto done;
                int ok = 1;
                as_ll(worst, &ok);
                PyErr_Clear();
                if (ok && append_level(out, worst, ZERO) < 0) /* else: beyond the wire schema */
                    goto done;
            }
        }
    } else {
        PyObject *had = PyDict_GetItemWithError(sd->levels, px);
        if (had) {
            if (PyDict_DelItem(sd->levels, px) < 0 ||
                PyList_SetSlice(sd->keys, rank, rank + 1, NULL) < 0)
                goto done;
        } else if (PyErr_Occurred()) {
            goto done;
        } else {
            rank = -1;
        }
    }
    if (rank >= 0 && rank < TOP) {
        sd->touched = 1;
        if (!r->sz) { /* deleted: the next level moves up into the top 10 */
            if (PyList_SetSlice(sd->prices, rank, rank + 1, NULL) < 0 ||
                PyList_SetSlice(sd->tokens, rank, rank + 1, NULL) < 0)
                goto done;
            if (PyList_GET_SIZE(sd->keys) >= TOP) {
                PyObject *nkey = PyList_GET_ITEM(sd->keys, TOP - 1);
                PyObject *nxt = sd->sign < 0 ? PyNumber_Negative(nkey) : Py_NewRef(nkey);
                PyObject *nsz = nxt ? PyDict_GetItemWithError(sd->levels, nxt) : NULL;
                if (nsz)
                    tok = moved_token(b, sd, nxt, nsz);
                else if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_KeyError, "a top-10 level is missing from the book");
                int bad = !tok || PyList_Append(sd->prices, nxt) < 0 ||
                          PyList_Append(sd->tokens, tok) < 0;
                Py_XDECREF(nxt);
                if (bad)
                    goto done;
            }
        } else {
            if (!(tok = ascii(r->token, r->ntoken)))
                goto done;
            int same = 0;
            if (rank < PyList_GET_SIZE(sd->prices)) {
                same = PyObject_RichCompareBool(PyList_GET_ITEM(sd->prices, rank), px, Py_EQ);
                if (same < 0)
                    goto done;
            }
            if (same) { /* same price, new size */
                if (PyList_SetItem(sd->tokens, rank, Py_NewRef(tok)) < 0)
                    goto done;
            } else { /* new price: the 10th (if any) drops out */
                if (PyList_Insert(sd->prices, rank, px) < 0 ||
                    PyList_Insert(sd->tokens, rank, tok) < 0)
                    goto done;
                Py_ssize_t n = PyList_GET_SIZE(sd->prices);
                if (n > TOP && (PyList_SetSlice(sd->prices, TOP, n, NULL) < 0 ||
                                PyList_SetSlice(sd->tokens, TOP, n, NULL) < 0))
                    goto done;
            }
        }
    }
    rc = 0;
done:
    Py_XDECREF(px);
    Py_XDECREF(sz);
    Py_XDECREF(tok);
    Py_XDECREF(keyo);
    Py_XDECREF(worst);
    return rc;
}

/* `_KState.checksum`, with its caching: a side's part is rebuilt only when None. */
static int checksum(Book *b, unsigned long *crc) {
    int ok = 1;
    long long crc_a = get_ll(b->state, S_crc_a, &ok), whole = get_ll(b->state, S_crc, &ok);
    PyObject *part_a = PyObject_GetAttr(b->asks.top, S_part);
    PyObject *part_b = part_a ? PyObject_GetAttr(b->bids.top, S_part) : NULL;
    int rc = -1;
    if (!ok || !part_b)
        goto done;
    if (part_a == Py_None) {
        Py_SETREF(part_a, joined(b->asks.tokens));
        if (!part_a || PyObject_SetAttr(b->asks.top, S_part, part_a) < 0)
            goto done;
        crc_a = (long long)crc32(0L, (const Bytef *)PyBytes_AS_STRING(part_a),
                                 (uInt)PyBytes_GET_SIZE(part_a));
        if (set_ll(b->state, S_crc_a, (unsigned long)crc_a) < 0)
            goto done;
        whole = -1;
    }
    if (part_b == Py_None) {
        Py_SETREF(part_b, joined(b->bids.tokens));
        if (!part_b || PyObject_SetAttr(b->bids.top, S_part, part_b) < 0)
            goto done;
        whole = -1;
    }
    if (!PyBytes_Check(part_b) || crc_a < 0) {
        PyErr_SetString(PyExc_TypeError, "_Top.part / _KState.crc_a: unexpected cache");
        goto done;
    }
    if (whole < 0) {
        whole = (long long)crc32((uLong)crc_a, (const Bytef *)PyBytes_AS_STRING(part_b),
                                 (uInt)PyBytes_GET_SIZE(part_b));
        if (set_ll(b->state, S_crc, (unsigned long)whole) < 0)
            goto done;
    }
    *crc = (unsigned long)whole;
    rc = 0;
done:
    Py_XDECREF(part_a);
    Py_XDECREF(part_b);
    return rc;
}

static int crossed(Book *b) {
    return crossed_keys(b->bids.keys, b->asks.keys);
}

/* A snapshot is ours if each side is strictly best first with no empty level. */
static int sorted_side(Frame *f, int side) {
    long long last = 0;
    int first = 1;
    for (Py_ssize_t i = 0; i < f->r.nrows; i++) {
        Row *r = &f->r.rows[i];
        if (r->side != side)
            continue;
        if (!r->sz || (!first && (side ? r->px >= last : r->px <= last)))
            return 0;
        last = r->px;
        first = 0;
    }
    return 1;
}

/* `L2Book.apply_snapshot` for sorted rows: the side's dict and keys refilled in place;
 * the record's levels (best first, within the depth) appended to `out`. */
static int fill_side(Book *b, Side *sd, Frame *f, int side, PyObject *out) {
    PyObject *keys = PyList_New(0);
    int rc = -1;
    Py_ssize_t kept = 0;
    if (!keys)
        return -1;
    PyDict_Clear(sd->levels);
    for (Py_ssize_t i = 0; i < f->r.nrows; i++) {
        Row *r = &f->r.rows[i];
        if (r->side != side || (b->depth && kept == b->depth))
            continue;
        PyObject *px = PyLong_FromLongLong(r->px), *sz = PyLong_FromLongLong(r->sz);
        PyObject *key = !px ? NULL : sd->sign > 0 ? Py_NewRef(px) : PyLong_FromLongLong(-r->px);
        int bad = !sz || !key || PyDict_SetItem(sd->levels, px, sz) < 0 ||
                  PyList_Append(keys, key) < 0 || append_level(out, px, sz) < 0;
        Py_XDECREF(px);
        Py_XDECREF(sz);
        Py_XDECREF(key);
        if (bad)
            goto done;
        kept++;
    }
    rc = PyList_SetSlice(sd->keys, 0, PyList_GET_SIZE(sd->keys), keys);
done:
    Py_DECREF(keys);
    return rc;
}

static PyObject *snapshot(Book *b, Frame *f, PyObject *ts_recv, Ctx *x) {
    /* the precision comes from the first ask (else bid), as in the reference */
    Row *first = &f->r.rows[0];
    for (Py_ssize_t i = 0; i < f->r.nrows; i++)
        if (f->r.rows[i].side == 0) {
            first = &f->r.rows[i];
            break;
        }
    const char *pd = memchr(first->price.s, '.', (size_t)first->price.n);
    const char *qd = memchr(first->qty.s, '.', (size_t)first->qty.n);
    long long ts_event, pdec, qdec, pmul = 1, qmul = 1;
    if (!pd || !qd)
        Py_RETURN_NONE;
    pdec = first->price.n - (pd - first->price.s) - 1;
    qdec = first->qty.n - (qd - first->qty.s) - 1;
    if (pdec < 1 || pdec > 9 || qdec < 1 || qdec > 9)
        Py_RETURN_NONE;
    for (long long i = pdec; i < 9; i++)
        pmul *= 10;
    for (long long i = qdec; i < 9; i++)
        qmul *= 10;
    if (!parse_rows(f, pdec, qdec, pmul, qmul, &ts_event) || !sorted_side(f, 0) ||
        !sorted_side(f, 1))
        Py_RETURN_NONE;
    /* accepted: from here on the book changes */
    PyObject *r = PyObject_CallMethod(b->state, "set_precision", "LL", pdec, qdec);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_CLEAR(b->native);
    if (load_book(b->state, b) != 1) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "_KState.native: None after set_precision");
        return NULL;
    }
    PyObject *out_a = PyList_New(0), *out_b = PyList_New(0), *result = NULL;
    if (!out_a || !out_b || fill_side(b, &b->asks, f, 0, out_a) < 0 ||
        fill_side(b, &b->bids, f, 1, out_b) < 0)
        goto done;
    if (!(r = PyObject_CallMethodNoArgs(b->state, S_reset_top)))
        goto done;
    Py_DECREF(r);
    if (PyObject_SetAttr(b->state, S_valid, Py_True) < 0)
        goto done;
    PyObject *ts = PyLong_FromLongLong(ts_event);
    if (!ts)
        goto done;
    int cross = crossed(b);
    if (cross) {
        if (cross > 0)
            result = outcome(2, b->state, ts, Py_NewRef(Py_None), Py_NewRef(Py_None));
        else
            Py_DECREF(ts);
        goto done;
    }
    PyObject *symbol = PyObject_GetAttr(b->state, S_symbol);
    PyObject *iid = symbol ? PyObject_GetAttr(b->state, S_iid) : NULL;
    if (iid) {
        PyObject *kw[9] = {x->feed, x->venue, symbol, iid, ts, ts_recv, Py_True, out_b, out_a};
        PyObject *book = PyObject_Vectorcall(x->book, kw, 0, KWNAMES);
        if (book)
            result = outcome(0, b->state, Py_NewRef(ts), book, PyLong_FromLong(0));
    }
    Py_DECREF(ts);
    Py_XDECREF(symbol);
    Py_XDECREF(iid);
done:
    Py_XDECREF(out_a);
    Py_XDECREF(out_b);
    return result;
}

static PyObject *update(Book *b, Frame *f, PyObject *ts_recv, Ctx *x) {
    long long ts_event;
    unsigned long venue_crc = 0;
    if (PyDict_GET_SIZE(b->asks.odd) || PyDict_GET_SIZE(b->bids.odd) ||
        !parse_rows(f, b->pdec, b->qdec, b->pmul, b->qmul, &ts_event))
        Py_RETURN_NONE; /* off-precision levels: the reference's job */
    if (f->has_checksum) {
        if (f->checksum.n < 1 || f->checksum.n > 10)
            Py_RETURN_NONE;
        for (Py_ssize_t i = 0; i < f->checksum.n; i++) {
            unsigned d = (unsigned)(f->checksum.s[i] - '0');
            if (d > 9)
                Py_RETURN_NONE;
            venue_crc = venue_crc * 10 + d;
        }
    }
    /* accepted: apply in wire order */
    PyObject *out_a = PyList_New(0), *out_b = PyList_New(0), *result = NULL, *ts = NULL;
    if (!out_a || !out_b)
        goto done;
    for (Py_ssize_t i = 0; i < f->r.nrows; i++) {
        Row *r = &f->r.rows[i];
        if (apply_row(b, r->side ? &b->bids : &b->asks, r, r->side ? out_b : out_a) < 0)
            goto done;
    }
    if ((b->asks.touched && PyObject_SetAttr(b->asks.top, S_part, Py_None) < 0) ||
        (b->bids.touched && PyObject_SetAttr(b->bids.top, S_part, Py_None) < 0))
        goto done;
    unsigned long ours = 0;
    if (f->has_checksum && checksum(b, &ours) < 0)
        goto done;
    if (!(ts = PyLong_FromLongLong(ts_event)))
        goto done;
    PyObject *kw[5] = {x->feed, x->venue, ts_recv, out_b, out_a};
    result = finish(b->state, ts, f->has_checksum, venue_crc, &f->checksum, ours, b->bids.keys,
                    b->asks.keys, kw, x->book);
    ts = NULL;
done:
    Py_XDECREF(ts);
    Py_XDECREF(out_a);
    Py_XDECREF(out_b);
    return result;
}

PyObject *v1_book(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    Frame f;
    Book b = {0};
    Ctx x;
    const char *p;
    Py_ssize_t n;
    PyObject *result = NULL;
    (void)mod;
    int got = entry_args(args, nargs, "v1_book", &x, &p, &n);
    if (got <= 0)
        return got < 0 ? NULL : Py_NewRef(Py_None);
    init_rows(&f.r);
    f.has_checksum = f.snapshot = 0;
    if (!frame(p, n, &f)) {
        free_rows(&f.r);
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *pair = ascii(f.pair.s, f.pair.n);
    PyObject *state = pair ? PyDict_GetItemWithError(args[0], pair) : NULL;
    Py_XDECREF(pair);
    if (!state) {
        if (!PyErr_Occurred())
            result = Py_NewRef(Py_None);
        goto done;
    }
    if (f.snapshot) {
        if (load_book(state, &b) >= 0)
            result = snapshot(&b, &f, args[2], &x);
        goto done;
    }
    PyObject *valid = PyObject_GetAttr(state, S_valid);
    if (!valid)
        goto done;
    int ok = valid == Py_True;
    Py_DECREF(valid);
    int loaded = ok ? load_book(state, &b) : 0;
    if (loaded < 0)
        goto done;
    result = loaded ? update(&b, &f, args[2], &x) : Py_NewRef(Py_None);
done:
    Py_XDECREF(b.native);
    free_rows(&f.r);
    return result;
}
