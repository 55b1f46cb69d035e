/* The JetStream publisher's per-message protocol work (bus/publisher.py is the reference):
 * HPUB framing of a batch of messages, and the scan over a run of plain acks. Both stop
 * at the first thing that is not the common case and leave it to Python. */
#include "common.h"

#define HDR_HEAD "NATS/1.0\r\nNats-Msg-Id: "
#define HDR_FIXED (sizeof HDR_HEAD - 1 + 4) /* + "\r\n\r\n": publisher._HDR_FIXED */

/* v >= 0 in decimal, right-aligned ending at `end`; the digits' start. */
static inline char *decimal(char *end, long long v) {
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static inline char *put(char *p, const char *s, Py_ssize_t n) {
    memcpy(p, s, (size_t)n);
    return p + n;
}

/* hpub(out, messages, inbox, n, room, max_payload) -> int */
PyObject *nats_hpub(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyByteArray_Check(args[0]) || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "hpub(out: bytearray, messages, inbox: bytes, n, room, max_payload)");
        return NULL;
    }
    PyObject *out = args[0];
    const char *inbox = PyBytes_AS_STRING(args[2]);
    Py_ssize_t inbox_n = PyBytes_GET_SIZE(args[2]);
    int ok = 1;
    long long n = as_ll(args[3], &ok), room = as_ll(args[4], &ok), max = as_ll(args[5], &ok);
    if (!ok || n < 0)
        return PyErr_Occurred() ? NULL : PyLong_FromLong(0);
    PyObject *it = PyObject_GetIter(args[1]);
    if (!it)
        return NULL;
    long long done = 0;
    PyObject *item;
    while (done < room && (item = PyIter_Next(it))) {
        const char *subject, *mid;
        Py_ssize_t subject_n, mid_n, payload_n;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 3 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(item, 0)) ||
            !PyBytes_Check(PyTuple_GET_ITEM(item, 1)) ||
            !PyUnicode_Check(PyTuple_GET_ITEM(item, 2)) ||
            !(subject = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 0), &subject_n)) ||
            !(mid = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 2), &mid_n)) ||
            (payload_n = PyBytes_GET_SIZE(PyTuple_GET_ITEM(item, 1))) > max ||
            memchr(mid, '\n', (size_t)mid_n) || !subject_n) {
            PyErr_Clear(); /* a str that is not UTF-8: Python raises for it */
            Py_DECREF(item);
            break;
        }
        for (Py_ssize_t i = 0; i < subject_n; i++) {
            char c = subject[i];
            if (c == ' ' || c == '\r' || c == '\n') {
                subject_n = 0;
                break;
            }
        }
        if (!subject_n) {
            Py_DECREF(item);
            break;
        }
        /* "HPUB " s " " inbox n " " hlen " " total "\r\n" header payload "\r\n" */
        Py_ssize_t hlen = (Py_ssize_t)HDR_FIXED + mid_n;
        char nums[3][24], *num[3];
        num[0] = decimal(nums[0] + 24, n + done);
        num[1] = decimal(nums[1] + 24, hlen);
        num[2] = decimal(nums[2] + 24, hlen + payload_n);
        Py_ssize_t len[3] = {nums[0] + 24 - num[0], nums[1] + 24 - num[1], nums[2] + 24 - num[2]};
        Py_ssize_t used = PyByteArray_GET_SIZE(out);
        if (PyByteArray_Resize(out, used + 5 + subject_n + 1 + inbox_n + len[0] + 1 + len[1] +
                                        1 + len[2] + 2 + hlen + payload_n + 2) < 0) {
            Py_DECREF(item);
            Py_DECREF(it);
            return NULL;
        }
        char *p = PyByteArray_AS_STRING(out) + used;
        p = put(p, "HPUB ", 5);
        p = put(p, subject, subject_n);
        *p++ = ' ';
        p = put(p, inbox, inbox_n);
        p = put(p, num[0], len[0]);
        *p++ = ' ';
        p = put(p, num[1], len[1]);
        *p++ = ' ';
        p = put(p, num[2], len[2]);
        p = put(p, "\r\n" HDR_HEAD, 2 + sizeof HDR_HEAD - 1);
        p = put(p, mid, mid_n);
        p = put(p, "\r\n\r\n", 4);
        p = put(p, PyBytes_AS_STRING(PyTuple_GET_ITEM(item, 1)), payload_n);
        put(p, "\r\n", 2);
        Py_DECREF(item);
        done++;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    return PyLong_FromLongLong(done);
}

/* The ASCII digits at p: how many (at most `most`), their value in *v (most <= 18). */
static inline Py_ssize_t digits(const char *p, const char *end, int most, long long *v) {
    Py_ssize_t i = 0;
    long long x = 0;
    while (p + i < end && i < most && p[i] >= '0' && p[i] <= '9')
        x = x * 10 + (p[i++] - '0');
    *v = x;
    return i;
}

/* Past the ASCII digits at p, or NULL if there are none (`\d+`). */
static inline const char *skip_digits(const char *p, const char *end) {
    const char *start = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p > start ? p : NULL;
}

static inline int lit(const char **p, const char *end, const char *s, Py_ssize_t n) {
    if (end - *p < n || memcmp(*p, s, (size_t)n))
        return 0;
    *p += n;
    return 1;
}

/* One plain ack at p, as publisher._PLAIN_ACK matches it: its end, or NULL. */
static const char *one_ack(const char *p, const char *end, long long *n, int *dup) {
    if (!lit(&p, end, "MSG ", 4))
        return NULL;
    const char *space = memchr(p, ' ', (size_t)(end - p));
    if (!space)
        return NULL;
    const char *dot = space;
    while (dot > p && dot[-1] != '.')
        dot--;
    /* `[^ ]+\.(\d{1,18}) `: something, the last dot, 1-18 digits up to the space */
    if (dot - 1 <= p || dot == space || digits(dot, space, 18, n) != space - dot)
        return NULL;
    p = space;
    if (!lit(&p, end, " 1 ", 3) || !(p = skip_digits(p, end)) ||
        !lit(&p, end, "\r\n{\"stream\":\"", 13))
        return NULL;
    const char *quote = memchr(p, '"', (size_t)(end - p));
    if (!quote)
        return NULL;
    p = quote;
    if (!lit(&p, end, "\",\"seq\":", 8) || !(p = skip_digits(p, end)))
        return NULL;
    *dup = lit(&p, end, ",\"duplicate\":", 13);
    if (*dup) {
        lit(&p, end, " ", 1);
        if (!lit(&p, end, "true", 4))
            return NULL;
    }
    return lit(&p, end, "}\r\n", 3) ? p : NULL;
}

/* acks(buf, pos) -> (end, first, count, duplicate) */
PyObject *nats_acks(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "acks(buf: bytes, pos: int)");
        return NULL;
    }
    const char *buf = PyBytes_AS_STRING(args[0]), *end = buf + PyBytes_GET_SIZE(args[0]);
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    if (pos < 0 || pos > end - buf)
        pos = end - buf;
    const char *p = buf + pos, *next;
    long long first = 0, n, count = 0;
    int dup = 0, d;
    while ((next = one_ack(p, end, &n, &d))) {
        if (count && (n != first + count || d != dup))
            break;
        if (!count) {
            first = n;
            dup = d;
        }
        count++;
        p = next;
    }
    return Py_BuildValue("(nLLO)", (Py_ssize_t)(p - buf), first, count,
                         dup ? Py_True : Py_False);
}
