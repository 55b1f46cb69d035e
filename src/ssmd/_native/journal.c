/* The raw journal's line, in C: every venue frame is journaled before anything else, so
 * `Journal.write` (capture/journal.py) runs once per frame. The reference is
 * `journal_format.append_line`: `_LINE % (t, m, frag, msgspec.json.encode(text))` with
 * `text` the payload decoded as UTF-8. msgspec escapes `"`, `\` and the control
 * characters below 0x20 (\b \t \n \f \r, else \u00xx, lowercase hex) and writes all else,
 * DEL and U+2028 included, as the UTF-8 it is.
 *
 * A payload that is not valid UTF-8 exactly as Python's strict decoder judges it (no
 * overlong forms, no surrogates, nothing beyond U+10FFFF, no truncated sequence), not
 * bytes or str, or a t/m beyond int64 returns False before the buffer changes, and the
 * general path (`encode_line`: `"b"` base64) writes the line.
 * tests/capture/test_journal_native.py holds the bytes to the reference. */
#include "common.h"

/* Bytes a byte below 0x80 adds when escaped: 0 plain, 1 short escape, 5 `\u00xx`. */
static const unsigned char extra[128] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5, /* \b \t \n \f \r short */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, ['"'] = 1, ['\\'] = 1,
};
static const char short_esc[128] = {
    ['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f',
    ['\r'] = 'r',
};

/* Eight bytes at a time (frames are mostly ASCII with a `"` every few bytes): 0x80 in
 * each byte of `w` that is zero, exactly (no borrow across bytes). */
#define ONES 0x0101010101010101ULL
static inline uint64_t zero_bytes(uint64_t w) {
    return ~(((w & 0x7F * ONES) + 0x7F * ONES) | w | 0x7F * ONES);
}

/* 0x80 in each byte of `w` that msgspec escapes: `"`, `\`, below 0x20. */
static inline uint64_t escaped_bytes(uint64_t w) {
    return zero_bytes(w ^ '"' * ONES) | zero_bytes(w ^ '\\' * ONES) | zero_bytes(w & 0xE0 * ONES);
}

static inline uint64_t load8(const unsigned char *s) {
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

/* Byte `i` (in memory order) of an `escaped_bytes` mask: 1 if flagged; and the index of
 * the first flagged byte of a nonzero mask. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FLAG(mask, i) ((mask) >> (8 * (i) + 7) & 1)
#define FIRST_FLAGGED(mask) (__builtin_ctzll(mask) >> 3)
#else
#define FLAG(mask, i) ((mask) >> (8 * (7 - (i)) + 7) & 1)
#define FIRST_FLAGGED(mask) (__builtin_clzll(mask) >> 3)
#endif

/* Bytes the escapes add to the valid UTF-8 `s`, or -1 if `s` is not valid UTF-8. */
static Py_ssize_t escaped_extra(const unsigned char *s, Py_ssize_t n) {
    const unsigned char *end = s + n;
    Py_ssize_t more = 0;
    while (s < end) {
        if (end - s >= 8) {
            uint64_t w = load8(s);
            if (!(w & 0x80 * ONES) && !zero_bytes(w & 0xE0 * ONES)) { /* only `"` and `\` */
                uint64_t e = zero_bytes(w ^ '"' * ONES) | zero_bytes(w ^ '\\' * ONES);
                more += (Py_ssize_t)(((e >> 7) * ONES) >> 56); /* one byte each */
                s += 8;
                continue;
            }
        }
        unsigned char c = *s;
        if (c < 0x80) {
            more += extra[c];
            s++;
            continue;
        }
        /* Unicode Table 3-7, the well-formed sequences (the second byte's range) */
        unsigned char lo = 0x80, hi = 0xBF;
        int len;
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong */
            hi = c == 0xED ? 0x9F : 0xBF; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            lo = c == 0xF0 ? 0x90 : 0x80; /* overlong */
            hi = c == 0xF4 ? 0x8F : 0xBF; /* beyond U+10FFFF */
        } else
            return -1;
        if (end - s < len || s[1] < lo || s[1] > hi)
            return -1;
        for (int i = 2; i < len; i++)
            if ((s[i] & 0xC0) != 0x80)
                return -1;
        s += len;
    }
    return more;
}

/* `s` escaped at `out`, which has room for it (`escaped_extra` more bytes than `n`):
 * eight bytes copied at a time up to the next byte to escape. Returns the end. */
static char *put_escaped(char *out, const unsigned char *s, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *end = s + n;
    while (s < end) {
        if (end - s >= 8) {
            uint64_t w = load8(s), e = escaped_bytes(w);
            memcpy(out, &w, 8); /* room: at least 8 bytes of `s` are still to come */
            if (!e) {
                s += 8;
                out += 8;
                continue;
            }
            if (!zero_bytes(w & 0xE0 * ONES)) { /* `"` and `\` only: a `\` before each */
                for (int i = 0; i < 8; i++) {
                    *out = '\\';
                    out += FLAG(e, i);
                    *out++ = (char)s[i];
                }
                s += 8;
                continue;
            }
            int k = FIRST_FLAGGED(e);
            s += k;
            out += k;
        }
        unsigned char c = *s++;
        if (c >= 0x80 || !extra[c])
            *out++ = (char)c;
        else if (short_esc[c]) {
            out[0] = '\\';
            out[1] = short_esc[c];
            out += 2;
        } else {
            memcpy(out, "\\u00", 4);
            out[4] = hex[c >> 4];
            out[5] = hex[c & 15];
            out += 6;
        }
    }
    return out;
}

/* Decimal digits of `v` at `out`, two at a time (t and m have 19 each); their count. */
static Py_ssize_t put_int(char *out, long long v) {
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "6263646566676869707172737475767778798081828384858687888990919293"
                                "949596979899";
    char tmp[24], *end = tmp + sizeof tmp, *d = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        d -= 2;
        memcpy(d, pairs + u % 100 * 2, 2);
        u /= 100;
    }
    if (u >= 10) {
        d -= 2;
        memcpy(d, pairs + u * 2, 2);
    } else
        *--d = (char)('0' + u);
    if (v < 0)
        *--d = '-';
    memcpy(out, d, (size_t)(end - d));
    return end - d;
}

static int as_int64(PyObject *o, long long *v) {
    int overflow;
    if (!PyLong_Check(o))
        return 0;
    *v = PyLong_AsLongLongAndOverflow(o, &overflow);
    return !overflow && !(*v == -1 && PyErr_Occurred());
}

/* One line appended: 1; declined (buf unchanged, the general path writes it): 0; -1 on
 * an error (set). */
static int append_one(PyObject *buf, long long t, long long m, PyObject *frag,
                      PyObject *payload) {
    const unsigned char *p;
    Py_ssize_t n, more;
    if (PyBytes_Check(payload)) {
        p = (const unsigned char *)PyBytes_AS_STRING(payload);
        n = PyBytes_GET_SIZE(payload);
    } else if (PyUnicode_Check(payload)) {
        p = (const unsigned char *)PyUnicode_AsUTF8AndSize(payload, &n); /* UTF-8 cached */
        if (!p) {
            PyErr_Clear(); /* lone surrogates: the general path keeps them as `b` */
            return 0;
        }
    } else
        return 0;
    if ((more = escaped_extra(p, n)) < 0)
        return 0;
    char tt[24], mm[24];
    Py_ssize_t nt = put_int(tt, t), nm = put_int(mm, m), nfrag = PyBytes_GET_SIZE(frag);
    Py_ssize_t old = PyByteArray_GET_SIZE(buf);
    /* {"t":T,"m":M frag "payload"}\n */
    if (PyByteArray_Resize(buf, old + 5 + nt + 5 + nm + nfrag + 1 + n + more + 3) < 0)
        return -1;
    char *out = PyByteArray_AS_STRING(buf) + old;
    memcpy(out, "{\"t\":", 5);
    memcpy(out + 5, tt, (size_t)nt);
    out += 5 + nt;
    memcpy(out, ",\"m\":", 5);
    memcpy(out + 5, mm, (size_t)nm);
    out += 5 + nm;
    memcpy(out, PyBytes_AS_STRING(frag), (size_t)nfrag);
    out += nfrag;
    *out++ = '"';
    if (more) {
        out = put_escaped(out, p, n);
    } else {
        memcpy(out, p, (size_t)n);
        out += n;
    }
    memcpy(out, "\"}\n", 3);
    return 1;
}

PyObject *journal_line(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    (void)mod;
    if (nargs != 5 || !PyByteArray_Check(args[0]) || !PyBytes_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "journal_line(buf: bytearray, t: int, m: int, frag: bytes, payload)");
        return NULL;
    }
    long long t, m;
    if (!as_int64(args[1], &t) || !as_int64(args[2], &m))
        Py_RETURN_FALSE;
    int got = append_one(args[0], t, m, args[3], args[4]);
    if (got < 0)
        return NULL;
    return PyBool_FromLong(got);
}

/* `journal_format.append_lines` in C: the lines of a socket read's (payload, ts, mono)
 * frames from `start` on, each with its position (pos_type(path, n), n counting on) added
 * to `out`; stops at a frame whose ts is outside [floor, deadline) or that is declined
 * (not appended), or after the line that fills the buffer to `chunk`. Returns the index
 * of the first frame not appended. */
PyObject *journal_lines(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    (void)mod;
    if (nargs != 11 || !PyByteArray_Check(args[0]) || !PyList_CheckExact(args[1]) ||
        !PyBytes_Check(args[3]) || !PyList_CheckExact(args[9]) || !PyType_Check(args[10]) ||
        !PyType_IsSubtype((PyTypeObject *)args[10], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError,
                        "journal_lines(buf, frames: list, start, frag, path, n, floor, deadline, "
                        "chunk, out: list, pos_type): see capture/journal_format.py");
        return NULL;
    }
    PyObject *buf = args[0], *frames = args[1], *frag = args[3], *path = args[4];
    PyObject *out = args[9];
    PyTypeObject *pos_type = (PyTypeObject *)args[10];
    Py_ssize_t start = start_index(args[2], PyList_GET_SIZE(frames));
    Py_ssize_t chunk = start < 0 ? -1 : PyLong_AsSsize_t(args[8]);
    long long n, floor, deadline;
    if (start < 0 || (chunk == -1 && PyErr_Occurred()))
        return NULL;
    if (!as_int64(args[5], &n) || !as_int64(args[6], &floor) || !as_int64(args[7], &deadline)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_OverflowError, "journal_lines: n, floor, deadline are int64");
        return NULL;
    }
    Py_ssize_t i = start, end = PyList_GET_SIZE(frames);
    for (; i < end; i++) {
        PyObject *frame = PyList_GET_ITEM(frames, i);
        long long t, m;
        if (!PyTuple_CheckExact(frame) || PyTuple_GET_SIZE(frame) != 3 ||
            !as_int64(PyTuple_GET_ITEM(frame, 1), &t) ||
            !as_int64(PyTuple_GET_ITEM(frame, 2), &m) || t < floor || t >= deadline)
            break;
        int got = append_one(buf, t, m, frag, PyTuple_GET_ITEM(frame, 0));
        if (got < 0)
            return NULL;
        if (!got)
            break;
        PyObject *pos = pos_type->tp_alloc(pos_type, 2);
        PyObject *at = pos ? PyLong_FromLongLong(n + (i - start)) : NULL;
        if (!at) {
            Py_XDECREF(pos);
            return NULL;
        }
        PyTuple_SET_ITEM(pos, 0, Py_NewRef(path));
        PyTuple_SET_ITEM(pos, 1, at);
        int bad = PyList_Append(out, pos) < 0;
        Py_DECREF(pos);
        if (bad)
            return NULL;
        if (PyByteArray_GET_SIZE(buf) >= chunk) {
            i++;
            break;
        }
    }
    return PyLong_FromSsize_t(i);
}
