/* Records on the wire, in C: the JSON bytes of `model/codec.py` (`encode`) and the
 * content hash of `bus/msgid.py` (BLAKE2b-128 of the record's msgpack bytes with ts_recv,
 * and maybe seq, zeroed) — the connector's per-record cost once normalizing is native.
 *
 * The record types register their fields and how each is written (`register_record`,
 * called by codec.py at import). A value outside the common shape — an int beyond int64
 * (uint64 for msgpack), a JSON string needing escapes, an unregistered type — returns
 * None and the Python reference does the work; tests/model/test_native_records.py holds
 * the bytes to the references (`msgspec.json.encode(to_wire(r))`, msgspec.msgpack). */
#include "common.h"
#include <structmember.h>

void blake2b(const uint8_t *in, size_t n, uint8_t *out, size_t outlen);

enum { K_INT, K_STR, K_BOOL, K_DECIMAL, K_LEVELS };
#define MAX_FIELDS 16
#define MAX_TYPES 8

#define KEY 40

typedef struct {
    PyObject *type;
    PyObject *tag; /* str */
    int n;
    PyObject *names[MAX_FIELDS];    /* interned */
    Py_ssize_t offsets[MAX_FIELDS]; /* of each field's slot: its member descriptor's */
    int kinds[MAX_FIELDS];
    char json_key[MAX_FIELDS][KEY]; /* `,"name":` */
    char mp_key[MAX_FIELDS][KEY];   /* the name as a msgpack str */
    int njson_key[MAX_FIELDS], nmp_key[MAX_FIELDS];
    int ts_recv, seq; /* field indexes the content hash zeroes */
    int ts_event;     /* the latency's other end (-1: none) */
    int feed, symbol, trade_id, snapshot; /* field indexes the Msg-Id reads (-1: none) */
    int venue_seq; /* a type whose `seq` may be the venue's (msgid rule 2) */
} Schema;

/* A field's value (borrowed) straight from its slot, as the member descriptor reads it. */
static inline PyObject *field(PyObject *record, const Schema *s, int i) {
    return *(PyObject **)((char *)record + s->offsets[i]);
}

static Schema schemas[MAX_TYPES];
static int nschemas;
static PyObject *encode_fallback; /* codec.encode_python: every record C declines */

static Schema *schema_of(PyObject *record) {
    PyObject *type = (PyObject *)Py_TYPE(record);
    for (int i = 0; i < nschemas; i++)
        if (schemas[i].type == type)
            return &schemas[i];
    return NULL;
}

/* -- a byte buffer: on the stack, grown onto the heap --------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
    char inline_buf[2048];
} Buf;

static void buf_init(Buf *b) {
    b->p = b->inline_buf;
    b->n = 0;
    b->cap = sizeof b->inline_buf;
}

static int reserve(Buf *b, size_t more) {
    if (b->n + more <= b->cap)
        return 1;
    size_t cap = b->cap;
    while (cap < b->n + more)
        cap *= 2;
    char *p = b->p == b->inline_buf ? PyMem_Malloc(cap) : PyMem_Realloc(b->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return 0;
    }
    if (b->p == b->inline_buf)
        memcpy(p, b->inline_buf, b->n);
    b->p = p;
    b->cap = cap;
    return 1;
}

static inline int put(Buf *b, const void *s, size_t n) {
    if (!reserve(b, n))
        return 0;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 1;
}

static void buf_free(Buf *b) {
    if (b->p != b->inline_buf)
        PyMem_Free(b->p);
}

/* -- JSON ------------------------------------------------------------------------------ */

/* The decimal digits of `v` at `out`, `width` at least (zero-padded); their count. */
static int digits_of(unsigned long long v, char *out, int width) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < width);
    for (int i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static int put_ll(Buf *b, long long v) {
    char tmp[24];
    int n = 0;
    if (v < 0)
        tmp[n++] = '-';
    n += digits_of(v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v, tmp + n, 1);
    return put(b, tmp, (size_t)n);
}

/* `from_fixed`: the canonical decimal of an int64 fixed-point value. */
static int put_decimal(Buf *b, long long v) {
    char tmp[32];
    int n = 0;
    if (v == LLONG_MIN)
        return 0;
    if (v < 0) {
        tmp[n++] = '-';
        v = -v;
    }
    n += digits_of((unsigned long long)(v / 1000000000LL), tmp + n, 1);
    long long frac = v % 1000000000LL;
    if (frac) {
        tmp[n++] = '.';
        int len = digits_of((unsigned long long)frac, tmp + n, 9);
        while (tmp[n + len - 1] == '0')
            len--;
        n += len;
    }
    return put(b, tmp, (size_t)n);
}

/* A JSON string with nothing to escape (printable ASCII but `"` and `\`); else decline. */
static int put_plain_string(Buf *b, PyObject *s) {
    if (!PyUnicode_Check(s) || !PyUnicode_IS_ASCII(s))
        return 0;
    const char *p = (const char *)PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e || p[i] == '"' || p[i] == '\\')
            return 0;
    return put(b, "\"", 1) && put(b, p, (size_t)n) && put(b, "\"", 1);
}

static int int_of(PyObject *o, long long *v) {
    int overflow;
    if (!PyLong_CheckExact(o))
        return 0;
    *v = PyLong_AsLongLongAndOverflow(o, &overflow);
    return !overflow && !(*v == -1 && PyErr_Occurred());
}

/* A level (a 2-tuple or 2-list of ints) as (price, size). */
static int level_of(PyObject *lv, long long *px, long long *sz) {
    PyObject *a, *b;
    if (PyTuple_CheckExact(lv) && PyTuple_GET_SIZE(lv) == 2) {
        a = PyTuple_GET_ITEM(lv, 0);
        b = PyTuple_GET_ITEM(lv, 1);
    } else if (PyList_CheckExact(lv) && PyList_GET_SIZE(lv) == 2) {
        a = PyList_GET_ITEM(lv, 0);
        b = PyList_GET_ITEM(lv, 1);
    } else {
        return 0;
    }
    return int_of(a, px) && int_of(b, sz);
}

static int json_value(Buf *b, PyObject *v, int kind) {
    long long x, y;
    switch (kind) {
    case K_INT:
        return int_of(v, &x) && put_ll(b, x);
    case K_DECIMAL:
        return int_of(v, &x) && put(b, "\"", 1) && put_decimal(b, x) && put(b, "\"", 1);
    case K_STR:
        return put_plain_string(b, v);
    case K_BOOL:
        return v == Py_True ? put(b, "true", 4) : v == Py_False ? put(b, "false", 5) : 0;
    default: /* K_LEVELS */
        if (!PyList_CheckExact(v) || !put(b, "[", 1))
            return 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            if ((i && !put(b, ",", 1)) || !level_of(PyList_GET_ITEM(v, i), &x, &y) ||
                !put(b, "[\"", 2) || !put_decimal(b, x) || !put(b, "\",\"", 3) ||
                !put_decimal(b, y) || !put(b, "\"]", 2))
                return 0;
        }
        return put(b, "]", 1);
    }
}

/* -- msgpack (msgspec's encoding of the struct: a map, the tag first) ----------------- */

/* A container (or long string) header: the fix form up to `fixmax`, else 16/32-bit. */
static int mp_head(Buf *b, int fix, size_t fixmax, uint8_t c16, uint8_t c32, size_t n) {
    uint8_t t[5];
    if (fix >= 0 && n <= fixmax) {
        t[0] = (uint8_t)(fix | n);
        return put(b, t, 1);
    }
    if (n < 65536) {
        t[0] = c16;
        t[1] = (uint8_t)(n >> 8);
        t[2] = (uint8_t)n;
        return put(b, t, 3);
    }
    t[0] = c32;
    for (int i = 0; i < 4; i++)
        t[1 + i] = (uint8_t)(n >> (24 - 8 * i));
    return put(b, t, 5);
}

static int mp_be(Buf *b, uint8_t code, uint64_t v, int bytes) {
    uint8_t t[9];
    t[0] = code;
    for (int i = 0; i < bytes; i++)
        t[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    return put(b, t, (size_t)bytes + 1);
}

static int mp_int(Buf *b, PyObject *o) {
    int overflow;
    if (!PyLong_CheckExact(o))
        return 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        return mp_be(b, 0xcf, u, 8);
    }
    if (overflow || (v == -1 && PyErr_Occurred()))
        return 0;
    if (v >= 0) {
        if (v < 128) {
            uint8_t t = (uint8_t)v;
            return put(b, &t, 1);
        }
        return v < 256 ? mp_be(b, 0xcc, (uint64_t)v, 1)
             : v < 65536 ? mp_be(b, 0xcd, (uint64_t)v, 2)
             : v < 4294967296LL ? mp_be(b, 0xce, (uint64_t)v, 4)
             : mp_be(b, 0xcf, (uint64_t)v, 8);
    }
    if (v >= -32) {
        uint8_t t = (uint8_t)(int8_t)v;
        return put(b, &t, 1);
    }
    return v >= -128 ? mp_be(b, 0xd0, (uint64_t)v, 1)
         : v >= -32768 ? mp_be(b, 0xd1, (uint64_t)v, 2)
         : v >= -2147483648LL ? mp_be(b, 0xd2, (uint64_t)v, 4)
         : mp_be(b, 0xd3, (uint64_t)v, 8);
}

static int mp_str(Buf *b, PyObject *s) {
    Py_ssize_t n;
    const char *p = PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (!p) {
        PyErr_Clear();
        return 0;
    }
    int head = n < 256 && n >= 32 ? mp_be(b, 0xd9, (uint64_t)n, 1)
                                  : mp_head(b, 0xa0, 31, 0xda, 0xdb, (size_t)n);
    return head && put(b, p, (size_t)n);
}

static int mp_value(Buf *b, PyObject *v, int kind) {
    uint8_t t;
    switch (kind) {
    case K_INT:
    case K_DECIMAL:
        return mp_int(b, v);
    case K_STR:
        return mp_str(b, v);
    case K_BOOL:
        if (v != Py_True && v != Py_False)
            return 0;
        t = v == Py_True ? 0xc3 : 0xc2;
        return put(b, &t, 1);
    default: /* K_LEVELS */
        if (!PyList_CheckExact(v) || !mp_head(b, 0x90, 15, 0xdc, 0xdd, (size_t)PyList_GET_SIZE(v)))
            return 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            PyObject *lv = PyList_GET_ITEM(v, i);
            int tuple = PyTuple_CheckExact(lv);
            if ((!tuple && !PyList_CheckExact(lv)) || Py_SIZE(lv) != 2 ||
                !mp_head(b, 0x90, 15, 0xdc, 0xdd, 2) ||
                !mp_int(b, tuple ? PyTuple_GET_ITEM(lv, 0) : PyList_GET_ITEM(lv, 0)) ||
                !mp_int(b, tuple ? PyTuple_GET_ITEM(lv, 1) : PyList_GET_ITEM(lv, 1)))
                return 0;
        }
        return 1;
    }
}

/* -- the entry points ------------------------------------------------------------------ */

static PyObject *S_type;

PyObject *register_record(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    (void)mod;
    static const char *names[] = {"int", "str", "bool", "decimal", "levels"};
    static const struct {
        const char *name;
        size_t index; /* of the Schema member that holds the field's index */
    } named[] = {
        {"ts_recv", offsetof(Schema, ts_recv)}, {"seq", offsetof(Schema, seq)},
        {"feed", offsetof(Schema, feed)},       {"symbol", offsetof(Schema, symbol)},
        {"trade_id", offsetof(Schema, trade_id)}, {"snapshot", offsetof(Schema, snapshot)},
        {"ts_event", offsetof(Schema, ts_event)},
    };
    if (nargs != 4 || !PyType_Check(args[0]) || !PyUnicode_Check(args[1]) ||
        !PyTuple_Check(args[2]) || !PyTuple_Check(args[3]) ||
        PyTuple_GET_SIZE(args[2]) != PyTuple_GET_SIZE(args[3]) ||
        PyTuple_GET_SIZE(args[2]) > MAX_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "register_record(cls, tag, fields, kinds)");
        return NULL;
    }
    Schema *s = NULL;
    for (int i = 0; i < nschemas; i++)
        if (schemas[i].type == args[0])
            s = &schemas[i];
    if (!s) {
        if (nschemas == MAX_TYPES) {
            PyErr_SetString(PyExc_ValueError, "too many record types");
            return NULL;
        }
        s = &schemas[nschemas++];
    }
    s->type = Py_NewRef(args[0]);
    s->tag = Py_NewRef(args[1]);
    s->n = (int)PyTuple_GET_SIZE(args[2]);
    s->venue_seq = PyUnicode_CompareWithASCIIString(args[1], "trade") == 0 ||
                   PyUnicode_CompareWithASCIIString(args[1], "quote") == 0 ||
                   PyUnicode_CompareWithASCIIString(args[1], "book") == 0;
    s->ts_recv = s->seq = s->feed = s->symbol = s->trade_id = s->snapshot = s->ts_event = -1;
    for (int i = 0; i < s->n; i++) {
        PyObject *name = PyTuple_GET_ITEM(args[2], i), *kind = PyTuple_GET_ITEM(args[3], i);
        if (!PyUnicode_Check(name) || !PyUnicode_Check(kind)) {
            PyErr_SetString(PyExc_TypeError, "fields and kinds are str");
            return NULL;
        }
        Py_INCREF(name);
        PyUnicode_InternInPlace(&name);
        s->names[i] = name;
        s->kinds[i] = -1;
        for (int k = 0; k < 5; k++)
            if (PyUnicode_CompareWithASCIIString(kind, names[k]) == 0)
                s->kinds[i] = k;
        if (s->kinds[i] < 0) {
            PyErr_Format(PyExc_ValueError, "unknown kind %R", kind);
            return NULL;
        }
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(name, &len);
        PyObject *descr = utf8 ? PyObject_GetAttr(args[0], name) : NULL;
        if (!descr)
            return NULL;
        int member = Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                     ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX;
        if (member)
            s->offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (!member || len > KEY - 8) {
            PyErr_Format(PyExc_TypeError, "%R: not a struct field slot (or too long)", name);
            return NULL;
        }
        s->njson_key[i] = snprintf(s->json_key[i], KEY, ",\"%s\":", utf8);
        s->mp_key[i][0] = (char)(0xa0 | len); /* fixstr: names are short */
        memcpy(s->mp_key[i] + 1, utf8, (size_t)len);
        s->nmp_key[i] = (int)len + 1;
        for (size_t k = 0; k < sizeof named / sizeof named[0]; k++)
            if (PyUnicode_CompareWithASCIIString(name, named[k].name) == 0)
                *(int *)((char *)s + named[k].index) = i;
    }
    Py_RETURN_NONE;
}

/* codec.encode: the JSON bytes in C, or from the registered Python fallback. */
PyObject *encode(PyObject *mod, PyObject *record) {
    PyObject *out = encode_record(mod, record);
    if (out != Py_None)
        return out;
    Py_DECREF(out);
    if (!encode_fallback) {
        PyErr_SetString(PyExc_RuntimeError, "no encode fallback registered");
        return NULL;
    }
    return PyObject_CallOneArg(encode_fallback, record);
}

PyObject *set_encode_fallback(PyObject *mod, PyObject *fn) {
    (void)mod;
    Py_XSETREF(encode_fallback, Py_NewRef(fn));
    Py_RETURN_NONE;
}

/* The record's JSON bytes; None (a new reference) where C declines. */
static PyObject *json_bytes(PyObject *record, const Schema *s) {
    Buf b;
    PyObject *result = NULL;
    buf_init(&b);
    int ok = put(&b, "{\"type\":", 8) && put_plain_string(&b, s->tag);
    for (int i = 0; ok && i < s->n; i++) {
        PyObject *v = field(record, s, i);
        ok = v && put(&b, s->json_key[i], (size_t)s->njson_key[i]) &&
             json_value(&b, v, s->kinds[i]);
    }
    if (ok && put(&b, "}", 1))
        result = PyBytes_FromStringAndSize(b.p, (Py_ssize_t)b.n);
    else if (!PyErr_Occurred())
        result = Py_NewRef(Py_None);
    buf_free(&b);
    return result;
}

PyObject *encode_record(PyObject *mod, PyObject *record) {
    (void)mod;
    Schema *s = schema_of(record);
    return s ? json_bytes(record, s) : Py_NewRef(Py_None);
}

/* The content hash's 32 hex digits into `text`: 1, or 0 where C declines (an error set
 * only on a real failure). */
static int hash_hex(PyObject *record, const Schema *s, int drop_seq, char *text) {
    Buf b;
    buf_init(&b);
    int ok = mp_head(&b, 0x80, 15, 0xde, 0xdf, (size_t)s->n + 1) && mp_str(&b, S_type) &&
             mp_str(&b, s->tag);
    for (int i = 0; ok && i < s->n; i++) {
        int zero = i == s->ts_recv || (drop_seq && i == s->seq);
        PyObject *v = zero ? ZERO : field(record, s, i);
        ok = v && put(&b, s->mp_key[i], (size_t)s->nmp_key[i]) && mp_value(&b, v, s->kinds[i]);
    }
    if (ok) {
        static const char hex[] = "0123456789abcdef";
        uint8_t digest[16];
        blake2b((const uint8_t *)b.p, b.n, digest, sizeof digest);
        for (int i = 0; i < 16; i++) {
            text[2 * i] = hex[digest[i] >> 4];
            text[2 * i + 1] = hex[digest[i] & 15];
        }
    }
    buf_free(&b);
    return ok;
}

PyObject *content_hash(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    (void)mod;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "content_hash(record, drop_seq)");
        return NULL;
    }
    Schema *s = schema_of(args[0]);
    int drop_seq = PyObject_IsTrue(args[1]);
    char text[32];
    if (!s || drop_seq < 0)
        return drop_seq < 0 ? NULL : Py_NewRef(Py_None);
    if (hash_hex(args[0], s, drop_seq, text))
        return ascii(text, 32);
    return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
}

PyObject *blake2b_digest(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    (void)mod;
    Py_buffer view;
    long size = nargs == 2 ? PyLong_AsLong(args[1]) : -1;
    if (nargs != 2 || size < 1 || size > 64 || PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "blake2b(data, digest_size 1..64)");
        return NULL;
    }
    uint8_t out[64];
    blake2b((const uint8_t *)view.buf, (size_t)view.len, out, (size_t)size);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)out, size);
}

/* -- records → the outbox's messages (capture/stamp.py) --------------------------------- */

enum { SCOPE_VENUE, SCOPE_CONNECTION, SCOPE_UNKNOWN };

/* msgid._part leaves it as it is: no '%', ':', control or space character. */
static int safe_part(PyObject *text) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(text); i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c <= 0x20 || c == 0x7f || c == '%' || c == ':')
            return 0;
    }
    return 1;
}

/* prefix + mark + tail: the Msg-Id (`tail`: ASCII bytes, or the str `tail_str`). */
static PyObject *msg_id_of(PyObject *prefix, char mark, const char *tail, Py_ssize_t ntail,
                           PyObject *tail_str) {
    if (tail_str && PyUnicode_IS_ASCII(tail_str)) {
        tail = (const char *)PyUnicode_DATA(tail_str);
        ntail = PyUnicode_GET_LENGTH(tail_str);
        tail_str = NULL;
    }
    if (!tail_str && PyUnicode_IS_ASCII(prefix)) {
        Py_ssize_t np = PyUnicode_GET_LENGTH(prefix);
        PyObject *out = PyUnicode_New(np + 1 + ntail, 127);
        if (!out)
            return NULL;
        char *p = (char *)PyUnicode_1BYTE_DATA(out);
        memcpy(p, PyUnicode_DATA(prefix), (size_t)np);
        p[np] = mark;
        memcpy(p + np + 1, tail, (size_t)ntail);
        return out;
    }
    PyObject *rest = tail_str ? PyUnicode_FromFormat("%c%U", mark, tail_str)
                              : PyUnicode_FromFormat("%c%.*s", mark, (int)ntail, tail);
    PyObject *out = rest ? PyUnicode_Concat(prefix, rest) : NULL;
    Py_XDECREF(rest);
    return out;
}

/* msgid.msg_id: rules 1-3 of bus/msgid.py; None (a new reference) where C declines. */
static PyObject *record_msg_id(PyObject *record, const Schema *s, PyObject *prefix, int scope,
                               PyObject *part) {
    PyObject *trade_id = s->trade_id >= 0 ? field(record, s, s->trade_id) : NULL;
    if (trade_id && !PyUnicode_CheckExact(trade_id))
        return Py_NewRef(Py_None);
    if (trade_id && PyUnicode_GET_LENGTH(trade_id)) {
        if (safe_part(trade_id))
            return msg_id_of(prefix, 't', NULL, 0, trade_id);
        PyObject *escaped = PyObject_CallOneArg(part, trade_id);
        PyObject *out = escaped ? msg_id_of(prefix, 't', NULL, 0, escaped) : NULL;
        Py_XDECREF(escaped);
        return out;
    }
    long long seq = 0;
    if (s->seq < 0 || !int_of(field(record, s, s->seq), &seq)) {
        PyErr_Clear();
        return Py_NewRef(Py_None);
    }
    if (seq && scope == SCOPE_VENUE && s->venue_seq) {
        char digits[24];
        int nd = 0;
        if (seq < 0)
            digits[nd++] = '-';
        nd += digits_of(seq < 0 ? 0ULL - (unsigned long long)seq : (unsigned long long)seq,
                        digits + nd, 1);
        PyObject *snap = s->snapshot >= 0 ? field(record, s, s->snapshot) : NULL;
        return msg_id_of(prefix, snap == Py_True ? 'S' : 's', digits, nd, NULL);
    }
    char text[32];
    if (!hash_hex(record, s, scope == SCOPE_CONNECTION, text))
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    return msg_id_of(prefix, 'h', text, 32, NULL);
}

/* A call's counts and names, kept in C until it returns: a read's records repeat a few
 * (type, symbol) pairs, so the connector's Counters are added to once per pair and read,
 * and a pair's (subject, Msg-Id prefix) is looked up once per read, not per record. */
#define TALLY 32
typedef struct {
    PyObject *counter, *key; /* borrowed: the records and ctx outlive the call */
    Py_ssize_t n;
} Count;

typedef struct {
    PyObject *feed, *tag, *symbol; /* borrowed, compared by identity */
    PyObject *found;               /* (subject, prefix), a reference held */
} Name;

typedef struct {
    Count counts[TALLY];
    int ncounts;
    Name names[TALLY];
    int nnames;
} Tally;

/* counter[key] += by */
static int add_count(PyObject *counter, PyObject *key, Py_ssize_t by) {
    PyObject *n = PyDict_GetItemWithError(counter, key);
    if (!n && PyErr_Occurred())
        return 0;
    long long v = n ? PyLong_AsLongLong(n) : 0;
    if (v == -1 && PyErr_Occurred())
        return 0;
    PyObject *next = PyLong_FromLongLong(v + by);
    int ok = next && PyDict_SetItem(counter, key, next) == 0;
    Py_XDECREF(next);
    return ok;
}

/* The kept counts into their Counters. */
static int flush_counts(Tally *t) {
    int ok = 1;
    for (int i = 0; i < t->ncounts; i++)
        ok = ok && add_count(t->counts[i].counter, t->counts[i].key, t->counts[i].n);
    t->ncounts = 0;
    return ok;
}

static int count(Tally *t, PyObject *counter, PyObject *key) {
    for (int i = 0; i < t->ncounts; i++)
        if (t->counts[i].key == key && t->counts[i].counter == counter) {
            t->counts[i].n++;
            return 1;
        }
    if (t->ncounts == TALLY && !flush_counts(t))
        return 0;
    t->counts[t->ncounts++] = (Count){counter, key, 1};
    return 1;
}

/* The cached (subject, prefix) of a record's (feed, type, symbol), borrowed; NULL: not
 * seen in this call. */
static PyObject *known_name(Tally *t, PyObject *feed, PyObject *tag, PyObject *symbol) {
    for (int i = 0; i < t->nnames; i++) {
        Name *nm = &t->names[i];
        if (nm->symbol == symbol && nm->tag == tag && nm->feed == feed)
            return nm->found;
    }
    return NULL;
}

static void remember_name(Tally *t, PyObject *feed, PyObject *tag, PyObject *symbol,
                          PyObject *found) {
    if (t->nnames < TALLY)
        t->names[t->nnames++] = (Name){feed, tag, symbol, Py_NewRef(found)};
}

static void tally_release(Tally *t) {
    for (int i = 0; i < t->nnames; i++)
        Py_DECREF(t->names[i].found);
    t->nnames = t->ncounts = 0;
}

/* One Message (a tuple subtype) of 5 items, the references stolen. */
static PyObject *message(PyTypeObject *type, PyObject *subject, PyObject *payload,
                         PyObject *id, PyObject *link, PyObject *origin) {
    PyObject *m = type->tp_alloc(type, 5);
    if (!m) {
        Py_DECREF(payload);
        Py_DECREF(id);
        return NULL;
    }
    PyTuple_SET_ITEM(m, 0, Py_NewRef(subject));
    PyTuple_SET_ITEM(m, 1, payload);
    PyTuple_SET_ITEM(m, 2, id);
    PyTuple_SET_ITEM(m, 3, Py_NewRef(link));
    PyTuple_SET_ITEM(m, 4, Py_NewRef(origin));
    return m;
}

static int ctx_ok(PyObject *ctx) {
    return PyTuple_CheckExact(ctx) && PyTuple_GET_SIZE(ctx) == 8 &&
           PyType_Check(PyTuple_GET_ITEM(ctx, 0)) &&
           PyType_IsSubtype((PyTypeObject *)PyTuple_GET_ITEM(ctx, 0), &PyTuple_Type) &&
           PyDict_Check(PyTuple_GET_ITEM(ctx, 3)) && PyDict_Check(PyTuple_GET_ITEM(ctx, 6)) &&
           PyDict_Check(PyTuple_GET_ITEM(ctx, 7));
}

/* ts_recv − ts_event of a record with a venue time added to `lat`: 0 added nothing, 1
 * one, -1 an error. */
static int latency(PyObject *record, const Schema *s, PyObject *lat) {
    if (s->ts_event < 0 || s->ts_recv < 0)
        return 0;
    PyObject *event = field(record, s, s->ts_event);
    int has = PyObject_IsTrue(event);
    if (has <= 0)
        return has;
    PyObject *diff = PyNumber_Subtract(field(record, s, s->ts_recv), event);
    int bad = !diff || PyList_Append(lat, diff) < 0;
    Py_XDECREF(diff);
    return bad ? -1 : 1;
}

/* One journal line's records (a list) → their Messages, counted, and their latencies
 * added to `lat`; None: declined, nothing counted (the Python path takes the line); NULL:
 * an error. */
static PyObject *line_messages(PyObject *records, PyObject *origin, PyObject *ctx,
                               PyObject *lat, Tally *t) {
    PyTypeObject *type = (PyTypeObject *)PyTuple_GET_ITEM(ctx, 0);
    int scope = (int)PyLong_AsLong(PyTuple_GET_ITEM(ctx, 1));
    PyObject *link = PyTuple_GET_ITEM(ctx, 2), *cache = PyTuple_GET_ITEM(ctx, 3);
    PyObject *names = PyTuple_GET_ITEM(ctx, 4), *part = PyTuple_GET_ITEM(ctx, 5);
    Py_ssize_t n = PyList_GET_SIZE(records);
    PyObject *out = PyList_New(n);
    if (!out)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *record = PyList_GET_ITEM(records, i);
        Schema *s = schema_of(record);
        if (!s || s->feed < 0 || s->symbol < 0)
            goto decline;
        PyObject *feed = field(record, s, s->feed), *symbol = field(record, s, s->symbol);
        PyObject *found = known_name(t, feed, s->tag, symbol); /* borrowed */
        if (found)
            goto named;
        PyObject *key = PyTuple_Pack(3, feed, s->tag, symbol);
        found = key ? PyDict_GetItemWithError(cache, key) : NULL; /* borrowed */
        if (!found && key && !PyErr_Occurred()) {
            PyObject *made = PyObject_Call(names, key, NULL); /* also stores it in `cache` */
            found = made ? PyDict_GetItemWithError(cache, key) : NULL;
            if (made && (found != made || !PyTuple_CheckExact(made) || PyTuple_GET_SIZE(made) != 2)) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "names() must cache (subject, prefix)");
                found = NULL;
            }
            Py_XDECREF(made); /* the cache holds it */
        }
        Py_XDECREF(key);
        if (!found)
            goto fail;
        remember_name(t, feed, s->tag, symbol, found);
    named:;
        PyObject *payload = json_bytes(record, s);
        if (!payload)
            goto fail;
        if (payload == Py_None) {
            Py_DECREF(payload);
            goto decline;
        }
        PyObject *id = record_msg_id(record, s, PyTuple_GET_ITEM(found, 1), scope, part);
        if (!id || id == Py_None) {
            Py_DECREF(payload);
            if (!id)
                goto fail;
            Py_DECREF(id);
            goto decline;
        }
        PyObject *m = message(type, PyTuple_GET_ITEM(found, 0), payload, id, link, origin);
        if (!m)
            goto fail;
        PyList_SET_ITEM(out, i, m);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *record = PyList_GET_ITEM(records, i);
        Schema *s = schema_of(record);
        if (!count(t, PyTuple_GET_ITEM(ctx, 6), s->tag) ||
            !count(t, PyTuple_GET_ITEM(ctx, 7), field(record, s, s->symbol)) ||
            latency(record, s, lat) < 0)
            goto fail;
    }
    return out;
decline:
    Py_DECREF(out);
    Py_RETURN_NONE;
fail:
    Py_DECREF(out);
    return NULL;
}

/* messages_lines(lines, origins, start, ctx, out, lat) -> (stop, taken): `line_messages`
 * for each line (a list of records) from `start` on, their Messages added to `out`, their
 * latencies to `lat`; an empty line is skipped; stops at a line C declines (the index
 * returned: Python stamps it). `taken`: lines C stamped. */
PyObject *messages_lines(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    (void)mod;
    if (nargs != 6 || !PyList_CheckExact(args[0]) || !PyList_CheckExact(args[1]) ||
        !ctx_ok(args[3]) || !PyList_CheckExact(args[4]) || !PyList_CheckExact(args[5])) {
        PyErr_SetString(PyExc_TypeError,
                        "messages_lines(lines: list, origins: list, start, ctx, out: list, "
                        "lat: list): see capture/stamp.py");
        return NULL;
    }
    PyObject *lines = args[0], *origins = args[1], *ctx = args[3], *out = args[4];
    PyObject *lat = args[5];
    Py_ssize_t end = PyList_GET_SIZE(lines), i = start_index(args[2], end), taken = 0;
    if (i < 0)
        return NULL;
    if (PyList_GET_SIZE(origins) != end) {
        PyErr_SetString(PyExc_ValueError, "messages_lines: as many origins as lines");
        return NULL;
    }
    Tally t = {.ncounts = 0, .nnames = 0};
    for (; i < end; i++) {
        PyObject *records = PyList_GET_ITEM(lines, i);
        if (!PyList_CheckExact(records))
            break;
        Py_ssize_t n = PyList_GET_SIZE(records);
        if (!n)
            continue;
        PyObject *got = line_messages(records, PyList_GET_ITEM(origins, i), ctx, lat, &t);
        if (!got)
            goto fail;
        if (got == Py_None) {
            Py_DECREF(got);
            break;
        }
        Py_ssize_t at = PyList_GET_SIZE(out);
        int bad = PyList_SetSlice(out, at, at, got) < 0;
        Py_DECREF(got);
        if (bad)
            goto fail;
        taken++;
    }
    if (!flush_counts(&t))
        goto fail;
    tally_release(&t);
    return Py_BuildValue("(nn)", i, taken);
fail:
    tally_release(&t);
    return NULL;
}

int init_record(void) {
    S_type = PyUnicode_InternFromString("type");
    return S_type != NULL;
}
