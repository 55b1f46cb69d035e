/* The `ssmd.venues._kraken_native` module: its entry points and interned names. */
#include "common.h"

PyObject *S_valid, *S_native, *S_part, *S_symbol, *S_iid, *S_crc, *S_crc_a;
PyObject *S_reset_top, *S_token, *S_bid_part, *KWNAMES, *VENUE, *ZERO, *MINUS_ONE;

PyDoc_STRVAR(v1_book_doc,
"v1_book(books, payload, ts_recv, feed, Book) -> list | tuple | None\n\n"
"One Kraken v1 book frame (snapshot or update) for a pair in `books`. None: not the\n"
"common shape, nothing changed (take the Python path). A list: [the Book record], its\n"
"checksum verified. Else (code, state, ts_event, a, b): code 0 = `a` is the Book\n"
"record, `b` is 1 if a checksum was verified; 1 = checksum mismatch (a: the venue's,\n"
"b: ours); 2 = the book is crossed. The book is updated in every case.");

PyDoc_STRVAR(v2_book_doc,
"v2_book(books, payload, ts_recv, feed, venue, Book, ts) -> list | tuple | None\n\n"
"One Kraken v2 book update frame for a symbol in `books` (`ts`: the reference's time\n"
"parser, asked once per new second). None: not the common shape, nothing changed. A\n"
"list: [the Book record], its checksum verified. Else (code, state, ts_event, a, b) as\n"
"v1_book's.");

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
