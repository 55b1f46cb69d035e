/* A socket read's frames through a venue's whole-frame C path (`v1_book`, `v2_frame`) in
 * one call: the loop of `NormalizerBase.on_frames` (venues/_normalizer.py), its reference,
 * for the frames C finishes itself. It stops at the first frame whose outcome Python
 * must finish (a checksum or crossed verdict, a raise, a frame C declines). */
#include "common.h"

/* 1 if `got` is a code-3 outcome (code, state, ts_event, records, _): trades or quotes. */
static int flow_records(PyObject *got) {
    if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != 5 ||
        !PyLong_CheckExact(PyTuple_GET_ITEM(got, 0)) ||
        !PyList_CheckExact(PyTuple_GET_ITEM(got, 3)))
        return 0;
    int overflow;
    return PyLong_AsLongAndOverflow(PyTuple_GET_ITEM(got, 0), &overflow) == 3;
}

/* native_frames(native, books, frames, start, ctx, out, kinds) -> (stop, books, flows, got)
 *
 * From frames[start] on, each frame's `native(books, payload, ts_recv, ctx)`: a list (a
 * book update whose checksum verified) is added to `out` and counted in `books`; a code-3
 * outcome (trades or quotes) adds its records to `out`, counts the frame in `flows` and
 * each record by its type in `kinds`. Anything else stops the loop at that frame: `got`
 * is what native returned (None: declined) or the Exception it raised (cleared). */
PyObject *native_frames(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    (void)mod;
    if (nargs != 7 || !PyList_CheckExact(args[2]) || !PyList_CheckExact(args[5]) ||
        !PyDict_CheckExact(args[6])) {
        PyErr_SetString(PyExc_TypeError,
                        "native_frames(native, books, frames: list, start, ctx, out: list, "
                        "kinds: dict): see venues/_normalizer.py");
        return NULL;
    }
    PyObject *native = args[0], *frames = args[2], *out = args[5], *kinds = args[6];
    Py_ssize_t end = PyList_GET_SIZE(frames), i = start_index(args[3], end);
    if (i < 0)
        return NULL;
    Py_ssize_t books = 0, flows = 0;
    PyObject *call[4] = {args[1], NULL, NULL, args[4]};
    PyObject *got = NULL;
    for (; i < end; i++) {
        PyObject *frame = PyList_GET_ITEM(frames, i);
        if (!PyTuple_CheckExact(frame) || PyTuple_GET_SIZE(frame) < 2) {
            got = Py_NewRef(Py_None); /* Python's loop unpacks it (and says what is wrong) */
            break;
        }
        call[1] = PyTuple_GET_ITEM(frame, 0);
        call[2] = PyTuple_GET_ITEM(frame, 1);
        got = PyObject_Vectorcall(native, call, 4, NULL);
        if (!got) {
            if (!PyErr_ExceptionMatches(PyExc_Exception))
                return NULL;
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            if (tb)
                PyException_SetTraceback(value, tb);
            Py_XDECREF(type);
            Py_XDECREF(tb);
            got = value;
            break;
        }
        if (PyList_CheckExact(got)) {
            int bad = PyList_Append(out, got) < 0;
            Py_DECREF(got);
            if (bad)
                return NULL;
            books++;
            continue;
        }
        if (flow_records(got)) {
            PyObject *records = PyTuple_GET_ITEM(got, 3);
            int bad = PyList_Append(out, records) < 0;
            for (Py_ssize_t k = 0; !bad && k < PyList_GET_SIZE(records); k++) {
                PyObject *kind = (PyObject *)Py_TYPE(PyList_GET_ITEM(records, k));
                PyObject *had = PyDict_GetItemWithError(kinds, kind);
                PyObject *now = had ? PyNumber_Add(had, ONE) : PyErr_Occurred() ? NULL
                                                                                 : Py_NewRef(ONE);
                bad = !now || PyDict_SetItem(kinds, kind, now) < 0;
                Py_XDECREF(now);
            }
            Py_DECREF(got);
            if (bad)
                return NULL;
            flows++;
            continue;
        }
        break; /* a verdict Python finishes */
    }
    if (i == end)
        got = Py_NewRef(Py_None);
    return Py_BuildValue("(nnnN)", i, books, flows, got);
}
