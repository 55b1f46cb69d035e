/* Kraken v1 book frames, whole frame in one call: decode, apply, checksum, record.
 *
 * Why: a v1 book update is ~100 bytes of JSON and one or two levels; in Python the
 * per-level parse, the sorted-key upkeep and the top-10 checksum tokens cost several
 * times the decode of the frame, and a 1000-level snapshot ~1 ms (bench/RESULTS.md).
 *
 * Contract (kraken_v1.py is the reference; tests/venues/test_kraken_native.py holds this
 * to it on the recordings and on generated frames): `v1_book` handles only the common
 * shape — compact JSON, plain ASCII strings, every level at the pair's wire precision
 * and within int64, a snapshot strictly sorted best first with no empty level, an update
 * to a valid book without off-precision levels — and then changes the very same Python
 * structures the reference keeps (the L2Book's level dicts and sorted keys, each side's
 * top-10 prices and checksum tokens and the cached CRC parts), so either path may take
 * the next frame. Anything else returns None *before changing anything*, and the Python
 * path decides.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#define TOP 10    /* levels per side in the checksum (book/checksum.py CHECKSUM_LEVELS) */
#define INLINE 64 /* rows kept on the stack; snapshots grow onto the heap */
#define TOKEN 48  /* digits of one level's checksum token (two int64s at most) */

typedef struct {
    const char *s;
    Py_ssize_t n;
} Slice;

typedef struct {
    Slice price, qty, stamp;
    long long px, sz;
    int side; /* 0 ask, 1 bid */
    int ntoken;
    char token[TOKEN];
} Row;

/* A frame's levels: on the stack for an update, grown onto the heap for a snapshot. */
typedef struct {
    Row *rows;
    Py_ssize_t nrows, cap;
    Row inline_rows[INLINE];
} Rows;

static void init_rows(Rows *r) {
    r->rows = r->inline_rows;
    r->nrows = 0;
    r->cap = INLINE;
}

static Row *new_row(Rows *r) {
    if (r->nrows == r->cap) {
        Py_ssize_t cap = r->cap * 4;
        Row *rows = r->rows == r->inline_rows ? PyMem_Malloc(cap * sizeof(Row))
                                              : PyMem_Realloc(r->rows, cap * sizeof(Row));
        if (!rows)
            return NULL;
        if (r->rows == r->inline_rows)
            memcpy(rows, r->inline_rows, sizeof r->inline_rows);
        r->rows = rows;
        r->cap = cap;
    }
    return &r->rows[r->nrows++];
}

static void free_rows(Rows *r) {
    if (r->rows != r->inline_rows)
        PyMem_Free(r->rows);
}

typedef struct {
    Rows r;
    Slice checksum, name, pair;
    int has_checksum, snapshot;
} Frame;

/* -- the restricted JSON grammar (no whitespace, no escapes: else Python's job) -------- */

typedef struct {
    const char *p, *end;
} Cur;

static int eat(Cur *c, char ch) {
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int str(Cur *c, Slice *out) {
    if (!eat(c, '"'))
        return 0;
    const char *start = c->p;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            out->s = start;
            out->n = c->p - start;
            c->p++;
            return 1;
        }
        if (ch == '\\' || ch < 0x20 || ch >= 0x80)
            return 0;
        c->p++;
    }
    return 0;
}

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

static long long as_ll(PyObject *o, int *ok) {
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred()))
        *ok = 0;
    return v;
}

static PyObject *ascii(const char *s, Py_ssize_t n) {
    PyObject *o = PyUnicode_New(n, 127);
    if (o)
        memcpy(PyUnicode_DATA(o), s, (size_t)n);
    return o;
}

/* -- the book: the reference's structures (kraken_v1._KState, _Top, L2Book) ------------- */

static PyObject *S_valid, *S_native, *S_part, *S_symbol, *S_iid, *S_crc, *S_crc_a;
static PyObject *S_reset_top, *S_token, *KWNAMES, *VENUE, *ZERO, *MINUS_ONE;

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

/* Compare a key (maybe beyond int64) with an int64: -1, 0, 1; -2 on error. */
static int cmp_key(PyObject *item, long long key) {
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(item, &overflow);
    if (overflow)
        return overflow;
    if (v == -1 && PyErr_Occurred())
        return -2;
    return v < key ? -1 : v > key;
}

static Py_ssize_t bisect_left(PyObject *keys, long long key) {
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(keys);
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        int c = cmp_key(PyList_GET_ITEM(keys, mid), key);
        if (c == -2)
            return -2;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int append_level(PyObject *out, PyObject *px, PyObject *sz) {
    PyObject *level = PyTuple_Pack(2, px, sz);
    if (!level)
        return -1;
    int rc = PyList_Append(out, level);
    Py_DECREF(level);
    return rc;
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

/* "".join(tokens).encode() */
static PyObject *joined(PyObject *tokens) {
    char buf[1024];
    Py_ssize_t used = 0, n;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(tokens); i++) {
        PyObject *t = PyList_GET_ITEM(tokens, i);
        if (!PyUnicode_Check(t) || !PyUnicode_IS_ASCII(t) ||
            used + (n = PyUnicode_GET_LENGTH(t)) > (Py_ssize_t)sizeof buf) {
            PyObject *sep = PyUnicode_New(0, 127), *text = sep ? PyUnicode_Join(sep, tokens) : NULL;
            PyObject *out = text ? PyUnicode_AsUTF8String(text) : NULL;
            Py_XDECREF(sep);
            Py_XDECREF(text);
            return out;
        }
        memcpy(buf + used, PyUnicode_DATA(t), (size_t)n);
        used += n;
    }
    return PyBytes_FromStringAndSize(buf, used);
}

static int set_ll(PyObject *obj, PyObject *name, unsigned long v) {
    PyObject *o = PyLong_FromUnsignedLong(v);
    int rc = o ? PyObject_SetAttr(obj, name, o) : -1;
    Py_XDECREF(o);
    return rc;
}

static long long get_ll(PyObject *obj, PyObject *name, int *ok) {
    PyObject *o = PyObject_GetAttr(obj, name);
    long long v = o ? as_ll(o, ok) : (*ok = 0);
    Py_XDECREF(o);
    return v;
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

/* (code, state, ts_event, a, b), taking over the references to ts, a and b. */
static PyObject *outcome(int code, PyObject *state, PyObject *ts, PyObject *a, PyObject *b) {
    PyObject *t = ts && a && b ? PyTuple_New(5) : NULL;
    if (!t) {
        Py_XDECREF(ts);
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, PyLong_FromLong(code)); /* a cached small int */
    PyTuple_SET_ITEM(t, 1, Py_NewRef(state));
    PyTuple_SET_ITEM(t, 2, ts);
    PyTuple_SET_ITEM(t, 3, a);
    PyTuple_SET_ITEM(t, 4, b);
    return t;
}

/* best bid >= best ask (`L2Book.is_crossed`; bid keys are negated prices): 1, 0, -1. */
static int crossed_keys(PyObject *bid_keys, PyObject *ask_keys) {
    if (!PyList_GET_SIZE(bid_keys) || !PyList_GET_SIZE(ask_keys))
        return 0;
    PyObject *bid = PyNumber_Negative(PyList_GET_ITEM(bid_keys, 0));
    if (!bid)
        return -1;
    int rc = PyObject_RichCompareBool(bid, PyList_GET_ITEM(ask_keys, 0), Py_GE);
    Py_DECREF(bid);
    return rc;
}

static int crossed(Book *b) {
    return crossed_keys(b->bids.keys, b->asks.keys);
}

/* The end of an update both versions share: a checksum mismatch (code 1), a crossed
 * book (code 2), else the Book record — as `[record]` when a checksum was verified (the
 * usual frame: no tuple to build and unpack), else (0, state, ts, record, 0). Takes
 * over `ts`. */
static PyObject *finish(PyObject *state, PyObject *ts, int has_checksum, unsigned long venue_crc,
                        const Slice *venue_text, unsigned long ours, PyObject *bid_keys,
                        PyObject *ask_keys, PyObject *const *kw_values, PyObject *book_type) {
    if (has_checksum && ours != venue_crc) {
        PyObject *text = venue_text ? ascii(venue_text->s, venue_text->n)
                                    : PyLong_FromUnsignedLong(venue_crc);
        return outcome(1, state, ts, text, PyLong_FromUnsignedLong(ours));
    }
    int x = crossed_keys(bid_keys, ask_keys);
    if (x) {
        if (x < 0) {
            Py_DECREF(ts);
            return NULL;
        }
        return outcome(2, state, ts, Py_NewRef(Py_None), Py_NewRef(Py_None));
    }
    PyObject *symbol = PyObject_GetAttr(state, S_symbol);
    PyObject *iid = symbol ? PyObject_GetAttr(state, S_iid) : NULL;
    PyObject *book = NULL, *result = NULL;
    if (iid) {
        PyObject *kw[9] = {kw_values[0], kw_values[1], symbol, iid, ts, kw_values[2], Py_False,
                           kw_values[3], kw_values[4]};
        book = PyObject_Vectorcall(book_type, kw, 0, KWNAMES);
    }
    Py_XDECREF(symbol);
    Py_XDECREF(iid);
    if (book && has_checksum) {
        Py_DECREF(ts);
        result = PyList_New(1);
        if (result)
            PyList_SET_ITEM(result, 0, book);
        else
            Py_DECREF(book);
        return result;
    }
    if (book)
        return outcome(0, state, ts, book, PyLong_FromLong(0));
    Py_DECREF(ts);
    return NULL;
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

static PyObject *snapshot(Book *b, Frame *f, PyObject *args[]) {
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
    int x = crossed(b);
    if (x) {
        if (x > 0)
            result = outcome(2, b->state, ts, Py_NewRef(Py_None), Py_NewRef(Py_None));
        else
            Py_DECREF(ts);
        goto done;
    }
    PyObject *symbol = PyObject_GetAttr(b->state, S_symbol);
    PyObject *iid = symbol ? PyObject_GetAttr(b->state, S_iid) : NULL;
    if (iid) {
        PyObject *kw[9] = {args[3], VENUE, symbol, iid, ts, args[2], Py_True, out_b, out_a};
        PyObject *book = PyObject_Vectorcall(args[4], kw, 0, KWNAMES);
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

static PyObject *update(Book *b, Frame *f, PyObject *args[]) {
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
    PyObject *kw[5] = {args[3], VENUE, args[2], out_b, out_a};
    result = finish(b->state, ts, f->has_checksum, venue_crc, &f->checksum, ours, b->bids.keys,
                    b->asks.keys, kw, args[4]);
    ts = NULL;
done:
    Py_XDECREF(ts);
    Py_XDECREF(out_a);
    Py_XDECREF(out_b);
    return result;
}

/* -- Kraken v2 (and `sim`): book updates ------------------------------------------------
 *
 * `{"channel":"book","type":"update","data":[{"symbol", "bids", "asks", "checksum",
 * "timestamp"}]}` with prices and quantities as JSON numbers; the reference is
 * kraken_v2.py (`KrakenV2Normalizer._book`, `_V2Book.apply` and `.checksum`). Taken:
 * one entry, members once each in any order, levels `{"price", "qty"}` as plain JSON
 * numbers (no sign or exponent, at most 9 decimals, within int64 at 1e-9), the time in
 * Kraken's `YYYY-MM-DDTHH:MM:SS.ffffffZ`, an integer checksum, a valid book at a
 * precision of at most 9 decimals. Snapshots stay in Python (one per subscription). */

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

static PyObject *S_bid_part;

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

PyDoc_STRVAR(v2_book_doc,
"v2_book(books, payload, ts_recv, feed, venue, Book, ts) -> list | tuple | None\n\n"
"One Kraken v2 book update frame for a symbol in `books` (`ts`: the reference's time\n"
"parser, asked once per new second). None: not the common shape, nothing changed. A\n"
"list: [the Book record], its checksum verified. Else (code, state, ts_event, a, b) as\n"
"v1_book's.");

static PyObject *v2_book(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
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

/* -- the entry point -------------------------------------------------------------------- */

PyDoc_STRVAR(v1_book_doc,
"v1_book(books, payload, ts_recv, feed, Book) -> tuple | None\n\n"
"One Kraken v1 book frame (snapshot or update) for a pair in `books`. None: not the\n"
"common shape, nothing changed (take the Python path). Else (code, state, ts_event, a,\n"
"b): code 0 = `a` is the Book record, `b` is 1 if a checksum was verified; 1 = checksum\n"
"mismatch (a: the venue's, b: ours); 2 = the book is crossed. The book is updated in\n"
"every case.");

static PyObject *v1_book(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    Frame f;
    Book b = {0};
    const char *p;
    Py_ssize_t n;
    PyObject *result = NULL;
    (void)mod;
    if (nargs != 5 || !PyDict_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "v1_book(books: dict, payload, ts_recv, feed, Book)");
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
            result = snapshot(&b, &f, (PyObject **)args);
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
    result = loaded ? update(&b, &f, (PyObject **)args) : Py_NewRef(Py_None);
done:
    Py_XDECREF(b.native);
    free_rows(&f.r);
    return result;
}

static PyMethodDef methods[] = {
    {"v1_book", (PyCFunction)(void (*)(void))v1_book, METH_FASTCALL, v1_book_doc},
    {"v2_book", (PyCFunction)(void (*)(void))v2_book, METH_FASTCALL, v2_book_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kraken_native",
    "Kraken v1 book frames, whole frame, in C (the reference is kraken_v1.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kraken_native(void) {
    S_valid = PyUnicode_InternFromString("valid");
    S_native = PyUnicode_InternFromString("native");
    S_part = PyUnicode_InternFromString("part");
    S_symbol = PyUnicode_InternFromString("symbol");
    S_iid = PyUnicode_InternFromString("iid");
    S_crc = PyUnicode_InternFromString("crc");
    S_crc_a = PyUnicode_InternFromString("crc_a");
    S_reset_top = PyUnicode_InternFromString("reset_top");
    S_bid_part = PyUnicode_InternFromString("bid_part");
    S_token = PyUnicode_InternFromString("token");
    VENUE = PyUnicode_InternFromString("kraken");
    ZERO = PyLong_FromLong(0);
    MINUS_ONE = PyLong_FromLong(-1);
    static const char *kw[] = {"feed", "venue", "symbol", "iid", "ts_event", "ts_recv",
                               "snapshot", "bids", "asks"};
    KWNAMES = PyTuple_New(9); /* interned: msgspec matches them by identity first */
    for (Py_ssize_t i = 0; KWNAMES && i < 9; i++) {
        PyObject *name = PyUnicode_InternFromString(kw[i]);
        if (!name)
            return NULL;
        PyTuple_SET_ITEM(KWNAMES, i, name);
    }
    if (!S_valid || !S_native || !S_part || !S_symbol || !S_iid || !S_crc || !S_crc_a ||
        !S_reset_top || !S_bid_part || !S_token || !VENUE || !ZERO || !MINUS_ONE || !KWNAMES)
        return NULL;
    return PyModule_Create(&module);
}
