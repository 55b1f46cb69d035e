/* What the native paths share: the frame scanner's primitives, the row buffer,
 * and the helpers that work on the reference's Python structures (sorted key lists,
 * level tuples, the CRC parts) and finish an update into its outcome.
 *
 * The contract of every native path (kraken_v1.c, kraken_v2.c): the Python module is
 * the reference; the C function takes only the common shape of a frame and changes the
 * very same Python structures the reference keeps, so either path may take the next
 * frame; anything else returns None *before changing anything* and Python decides.
 * tests/venues/test_kraken_native.py, test_kraken_v2_native.py,
 * tests/model/test_native_records.py and tests/capture/test_journal_native.py hold C to
 * Python.
 */
#ifndef SSMD_NATIVE_COMMON_H
#define SSMD_NATIVE_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#define TOP 10    /* levels per side in the checksum (book/checksum.py CHECKSUM_LEVELS) */
#define INLINE 64 /* rows kept on the stack; snapshots grow onto the heap */
#define TOKEN 48  /* digits of one level's checksum token (two int64s at most) */

/* interned names and constants (module.c) */
extern PyObject *S_valid, *S_native, *S_part, *S_symbol, *S_iid, *S_crc, *S_crc_a;
extern PyObject *S_reset_top, *S_token, *S_bid_part, *KWNAMES, *ZERO, *ONE, *MINUS_ONE;

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


typedef struct {
    const char *p, *end;
} Cur;

/* `arg` as the index a read's loop starts at: 0 <= start <= end, else ValueError (-1). */
static inline Py_ssize_t start_index(PyObject *arg, Py_ssize_t end) {
    Py_ssize_t start = PyLong_AsSsize_t(arg);
    if (start == -1 && PyErr_Occurred())
        return -1;
    if (start < 0 || start > end) {
        PyErr_Format(PyExc_ValueError, "start %zd outside 0..%zd", start, end);
        return -1;
    }
    return start;
}

static inline void init_rows(Rows *r) {
    r->rows = r->inline_rows;
    r->nrows = 0;
    r->cap = INLINE;
}

static inline Row *new_row(Rows *r) {
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

static inline void free_rows(Rows *r) {
    if (r->rows != r->inline_rows)
        PyMem_Free(r->rows);
}

static inline int eat(Cur *c, char ch) {
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static inline int str(Cur *c, Slice *out) {
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

static inline long long as_ll(PyObject *o, int *ok) {
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred()))
        *ok = 0;
    return v;
}

static inline PyObject *ascii(const char *s, Py_ssize_t n) {
    PyObject *o = PyUnicode_New(n, 127);
    if (o)
        memcpy(PyUnicode_DATA(o), s, (size_t)n);
    return o;
}

/* Compare a key (maybe beyond int64) with an int64: -1, 0, 1; -2 on error. */
static inline int cmp_key(PyObject *item, long long key) {
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(item, &overflow);
    if (overflow)
        return overflow;
    if (v == -1 && PyErr_Occurred())
        return -2;
    return v < key ? -1 : v > key;
}

static inline Py_ssize_t bisect_left(PyObject *keys, long long key) {
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

static inline int append_level(PyObject *out, PyObject *px, PyObject *sz) {
    PyObject *level = PyTuple_Pack(2, px, sz);
    if (!level)
        return -1;
    int rc = PyList_Append(out, level);
    Py_DECREF(level);
    return rc;
}

/* "".join(tokens).encode() */
static inline PyObject *joined(PyObject *tokens) {
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

static inline int set_ll(PyObject *obj, PyObject *name, unsigned long v) {
    PyObject *o = PyLong_FromUnsignedLong(v);
    int rc = o ? PyObject_SetAttr(obj, name, o) : -1;
    Py_XDECREF(o);
    return rc;
}

static inline long long get_ll(PyObject *obj, PyObject *name, int *ok) {
    PyObject *o = PyObject_GetAttr(obj, name);
    long long v = o ? as_ll(o, ok) : (*ok = 0);
    Py_XDECREF(o);
    return v;
}

/* (code, state, ts_event, a, b), taking over the references to ts, a and b. */
static inline PyObject *outcome(int code, PyObject *state, PyObject *ts, PyObject *a, PyObject *b) {
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
static inline int crossed_keys(PyObject *bid_keys, PyObject *ask_keys) {
    if (!PyList_GET_SIZE(bid_keys) || !PyList_GET_SIZE(ask_keys))
        return 0;
    PyObject *bid = PyNumber_Negative(PyList_GET_ITEM(bid_keys, 0));
    if (!bid)
        return -1;
    int rc = PyObject_RichCompareBool(bid, PyList_GET_ITEM(ask_keys, 0), Py_GE);
    Py_DECREF(bid);
    return rc;
}

/* The end of an update both versions share: a checksum mismatch (code 1), a crossed
 * book (code 2), else the Book record — as `[record]` when a checksum was verified (the
 * usual frame: no tuple to build and unpack), else (0, state, ts, record, 0). Takes
 * over `ts`. */
static inline PyObject *finish(PyObject *state, PyObject *ts, int has_checksum, unsigned long venue_crc,
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

/* A tuple of interned names: keyword names for a msgspec Struct's vectorcall (matched by
 * identity first). */
static inline PyObject *interned_names(const char *const *names, Py_ssize_t n) {
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++) {
        PyObject *name = PyUnicode_InternFromString(names[i]);
        if (!name) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, name);
    }
    return t;
}

/* What a venue normalizer hands every call (`NormalizerBase.native_ctx`): how records
 * are named and built. */
typedef struct {
    PyObject *feed, *venue, *book, *trade, *quote, *ts, *symbols, *defaults;
} Ctx;

static inline int load_ctx(PyObject *t, Ctx *x) {
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 8 || !PyDict_Check(PyTuple_GET_ITEM(t, 6)) ||
        !PyDict_Check(PyTuple_GET_ITEM(t, 7))) {
        PyErr_SetString(PyExc_TypeError, "native_ctx: not the expected layout");
        return 0;
    }
    PyObject **f[8] = {&x->feed, &x->venue, &x->book, &x->trade, &x->quote, &x->ts,
                       &x->symbols, &x->defaults};
    for (int i = 0; i < 8; i++)
        *f[i] = PyTuple_GET_ITEM(t, i);
    return 1;
}

/* An entry point's (books, payload, ts_recv, ctx) checked; the payload's bytes (an ASCII
 * str's too). 1 ok, 0 not ours (a non-ASCII str), -1 error. */
static inline int entry_args(PyObject *const *args, Py_ssize_t nargs, const char *name, Ctx *x,
                             const char **p, Py_ssize_t *n) {
    if (nargs != 4 || !PyDict_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s(books: dict, payload, ts_recv, ctx: tuple)", name);
        return -1;
    }
    if (!load_ctx(args[3], x))
        return -1;
    if (PyBytes_Check(args[1])) {
        *p = PyBytes_AS_STRING(args[1]);
        *n = PyBytes_GET_SIZE(args[1]);
        return 1;
    }
    if (PyUnicode_Check(args[1]) && PyUnicode_IS_ASCII(args[1])) {
        *p = (const char *)PyUnicode_DATA(args[1]);
        *n = PyUnicode_GET_LENGTH(args[1]);
        return 1;
    }
    return 0;
}

/* the entry points (module.c lists them) and their set-up */
PyObject *v1_book(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *v2_frame(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
int init_kraken_v2(void);
PyObject *nats_hpub(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *nats_acks(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *register_record(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *encode_record(PyObject *mod, PyObject *record);
PyObject *encode(PyObject *mod, PyObject *record);
PyObject *set_encode_fallback(PyObject *mod, PyObject *fn);
PyObject *content_hash(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *blake2b_digest(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
int init_record(void);
PyObject *journal_line(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *journal_lines(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *native_frames(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
PyObject *messages_lines(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);

#endif
