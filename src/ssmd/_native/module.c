/* The `ssmd._native` module: the hot paths in C, each with its Python reference (see
 * common.h): Kraken book frames (kraken_v1.c, kraken_v2.c) and records on the wire
 * (record.c, blake2b.c). */
#include "common.h"

PyObject *S_valid, *S_native, *S_part, *S_symbol, *S_iid, *S_crc, *S_crc_a;
PyObject *S_reset_top, *S_token, *S_bid_part, *KWNAMES, *ZERO, *ONE, *MINUS_ONE;

PyDoc_STRVAR(v1_book_doc,
"v1_book(books, payload, ts_recv, ctx) -> list | tuple | None\n\n"
"One Kraken v1 book frame (snapshot or update) for a pair in `books`. None: not the\n"
"common shape, nothing changed (take the Python path). A list: [the Book record], its\n"
"checksum verified. Else (code, state, ts_event, a, b): code 0 = `a` is the Book\n"
"record, `b` is 1 if a checksum was verified; 1 = checksum mismatch (a: the venue's,\n"
"b: ours); 2 = the book is crossed. The book is updated in every case.");

PyDoc_STRVAR(v2_frame_doc,
"v2_frame(books, payload, ts_recv, ctx) -> list | tuple | None\n\n"
"One Kraken v2 frame: a book update for a symbol in `books`, or a trade or ticker frame\n"
"(`ctx`: KrakenV2Normalizer._native_ctx). None: not the common shape, nothing changed.\n"
"A list: [the Book record], its checksum verified. Else (code, state, ts_event, a, b) as\n"
"v1_book's, and code 3: `a` holds the frame's trade or quote records.");

static PyMethodDef methods[] = {
    {"v1_book", (PyCFunction)(void (*)(void))v1_book, METH_FASTCALL, v1_book_doc},
    {"v2_frame", (PyCFunction)(void (*)(void))v2_frame, METH_FASTCALL, v2_frame_doc},
    {"register_record", (PyCFunction)(void (*)(void))register_record, METH_FASTCALL,
     "register_record(cls, tag, fields, kinds): how a record type is written (codec.py)."},
    {"encode_record", encode_record, METH_O,
     "encode_record(record) -> bytes | None: codec.encode's JSON bytes, None: use Python."},
    {"encode", encode, METH_O,
     "encode(record) -> bytes: encode_record, else the registered fallback's bytes."},
    {"set_encode_fallback", set_encode_fallback, METH_O,
     "set_encode_fallback(fn): what `encode` calls for a record C declines."},
    {"content_hash", (PyCFunction)(void (*)(void))content_hash, METH_FASTCALL,
     "content_hash(record, drop_seq) -> str | None: msgid.content_hash, None: use Python."},
    {"blake2b", (PyCFunction)(void (*)(void))blake2b_digest, METH_FASTCALL,
     "blake2b(data, digest_size) -> bytes: unkeyed BLAKE2b (RFC 7693)."},
    {"journal_line", (PyCFunction)(void (*)(void))journal_line, METH_FASTCALL,
     "journal_line(buf, t, m, frag, payload) -> bool: journal_format.append_line in C;\n"
     "False (buf unchanged): not UTF-8 bytes or str, take the general path (encode_line)."},
    {"journal_lines", (PyCFunction)(void (*)(void))journal_lines, METH_FASTCALL,
     "journal_lines(buf, frames, start, frag, path, n, floor, deadline, chunk, out, pos_type)\n"
     "-> int: journal_format.append_lines in C (a socket read's lines at once)."},
    {"hpub", (PyCFunction)(void (*)(void))nats_hpub, METH_FASTCALL,
     "hpub(out, messages, inbox, n, room, max_payload) -> int: HPUB frames of the first\n"
     "messages (subject, payload, msg_id, ...) appended to the bytearray `out` with reply\n"
     "inbox + n, n + 1, ...: how many (<= room); stops at one Publisher.try_publish must see."},
    {"messages_lines", (PyCFunction)(void (*)(void))messages_lines, METH_FASTCALL,
     "messages_lines(lines, origins, start, ctx, out, lat) -> (stop, taken): each line's\n"
     "records as Messages into out, counted, latencies into lat, until a line C declines."},
    {"native_frames", (PyCFunction)(void (*)(void))native_frames, METH_FASTCALL,
     "native_frames(native, books, frames, start, ctx, out, kinds) -> (stop, books, flows,\n"
     "got): a read's frames through a venue's C path until one Python must finish (frames.c)."},
    {"acks", (PyCFunction)(void (*)(void))nats_acks, METH_FASTCALL,
     "acks(buf, pos) -> (end, first, count, duplicate): the run of plain JetStream acks at\n"
     "pos numbered first, first + 1, ... with one duplicate flag (count 0: none there)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Kraken v1 book frames, whole frame, in C (the reference is kraken_v1.py).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
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
    ZERO = PyLong_FromLong(0);
    ONE = PyLong_FromLong(1);
    MINUS_ONE = PyLong_FromLong(-1);
    static const char *kw[] = {"feed", "venue", "symbol", "iid", "ts_event", "ts_recv",
                               "snapshot", "bids", "asks"};
    KWNAMES = interned_names(kw, 9);
    if (!S_valid || !S_native || !S_part || !S_symbol || !S_iid || !S_crc || !S_crc_a ||
        !S_reset_top || !S_bid_part || !S_token || !ZERO || !ONE || !MINUS_ONE || !KWNAMES ||
        !init_kraken_v2() || !init_record())
        return NULL;
    return PyModule_Create(&module);
}
