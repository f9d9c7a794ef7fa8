/* _bounce.c -- Python binding for the bounce parser (csrc/bounce*.c). Types only; reading files
 * is python/smtpcode/_bounces.py.
 *
 *   smtpcode.parse_bounce(message: bytes) -> list[Bounce]
 *   smtpcode.BounceError(ValueError): .offset (octet in the message), .code ("TOODEEP" ...)
 *   smtpcode.Bounce: a named tuple of the record's fields (bounce.h field map order), then
 *                    reply_code, reason, hard_bounce, retry, temporary, provider
 *   smtpcode._Mbox(): .feed(data: bytes, eof: bool) -> list[bytes] (the messages completed)
 */
#include "_smtpcode.h" /* Python.h first, as the C API asks */

#include <string.h>

static PyObject *BounceError = NULL;
static PyTypeObject *BounceType = NULL;
static smtpc_bounce_parser *g_parser = NULL; /* guarded by the GIL: parse never releases it */

#define EXTRA_FIELDS(XX)                                                                 \
  XX(reply_code, "3-digit reply code (int), or None")                                    \
  XX(reason, "reason name (Sisimai's): userunknown, mailboxfull, feedback, vacation ...") \
  XX(hard_bounce, "True when retrying can never succeed for this address")               \
  XX(retry, "True when a sender should try again later")                                 \
  XX(temporary, "True for a 4xx / class-4 failure")                                      \
  XX(provider, "provider whose rules decided the reason, or None")

enum {
#define XX(n, d) EXTRA_##n,
  EXTRA_FIELDS(XX)
#undef XX
  EXTRA_COUNT
};

static PyStructSequence_Field bounce_fields[SMTPC_BOUNCE_NFIELDS + EXTRA_COUNT + 1];
static PyStructSequence_Desc bounce_desc = {
  "smtpcode.Bounce",
  "One recipient of a bounce (or of a feedback report / auto-reply: see `kind`).\n"
  "Text fields are str or None.",
  bounce_fields, SMTPC_BOUNCE_NFIELDS + EXTRA_COUNT,
};

static PyObject *str_or_none(const char *s) {
  if (s == NULL) Py_RETURN_NONE;
  return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape");
}

static PyObject *bounce_new(const smtpc_bounce *r) {
  PyObject *t = PyStructSequence_New(BounceType);
  PyObject *v;
  int i;
  if (t == NULL) return NULL;
  for (i = 0; i < SMTPC_BOUNCE_NFIELDS; i++) {
    if ((v = str_or_none(r->field[i])) == NULL) goto fail;
    PyStructSequence_SET_ITEM(t, i, v);
  }
  i = SMTPC_BOUNCE_NFIELDS;
  if (r->reply_code) v = PyLong_FromLong(r->reply_code);
  else { Py_INCREF(Py_None); v = Py_None; }
  if (v == NULL) goto fail;
  PyStructSequence_SET_ITEM(t, i + EXTRA_reply_code, v);
  if ((v = PyUnicode_FromString(smtpc_reason_name(r->cls.reason))) == NULL) goto fail;
  PyStructSequence_SET_ITEM(t, i + EXTRA_reason, v);
  v = PyBool_FromLong(r->cls.hard_bounce);
  PyStructSequence_SET_ITEM(t, i + EXTRA_hard_bounce, v);
  v = PyBool_FromLong(r->cls.retry);
  PyStructSequence_SET_ITEM(t, i + EXTRA_retry, v);
  v = PyBool_FromLong(r->cls.temporary);
  PyStructSequence_SET_ITEM(t, i + EXTRA_temporary, v);
  if ((v = str_or_none(r->cls.provider)) == NULL) goto fail;
  PyStructSequence_SET_ITEM(t, i + EXTRA_provider, v);
  return t;
fail:
  Py_DECREF(t);
  return NULL;
}

static PyObject *raise_bounce_error(int rc, uint64_t offset) {
  PyObject *exc = PyObject_CallFunction(BounceError, "s", smtpc_strerror(rc));
  if (exc == NULL) return NULL;
  PyObject *off = PyLong_FromUnsignedLongLong(offset), *code = PyUnicode_FromString(smtpc_err_name(rc));
  if (off && code && PyObject_SetAttrString(exc, "offset", off) == 0 &&
      PyObject_SetAttrString(exc, "code", code) == 0) {
    PyObject *msg = PyUnicode_FromFormat("%s (at offset %S)", smtpc_strerror(rc), off);
    if (msg) {
      PyObject *args = PyTuple_Pack(1, msg);
      if (args) PyObject_SetAttrString(exc, "args", args);
      Py_XDECREF(args);
      Py_DECREF(msg);
    }
    PyErr_SetObject(BounceError, exc);
  }
  Py_XDECREF(off);
  Py_XDECREF(code);
  Py_DECREF(exc);
  return NULL;
}

static PyObject *py_parse_bounce(PyObject *self, PyObject *arg) {
  Py_buffer view;
  (void)self;
  if (PyUnicode_Check(arg)) {
    PyErr_SetString(PyExc_TypeError, "parse_bounce() takes the message as bytes, not str");
    return NULL;
  }
  if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
  if (g_parser == NULL && (g_parser = smtpc_bounce_new(NULL)) == NULL) {
    PyBuffer_Release(&view);
    return PyErr_NoMemory();
  }
  int rc = smtpc_bounce_parse(g_parser, view.buf, (size_t)view.len);
  PyBuffer_Release(&view);
  if (rc == SMTPC_ENOMEM) return PyErr_NoMemory();
  if (rc < 0) {
    uint64_t off = 0;
    smtpc_bounce_error(g_parser, &off);
    return raise_bounce_error(rc, off);
  }
  PyObject *list = PyList_New(rc);
  if (list == NULL) return NULL;
  for (int i = 0; i < rc; i++) {
    PyObject *b = bounce_new(smtpc_bounce_record(g_parser, (size_t)i));
    if (b == NULL) {
      Py_DECREF(list);
      return NULL;
    }
    PyList_SET_ITEM(list, i, b);
  }
  return list;
}

/* ---- mbox splitting ------------------------------------------------------------------------ */

typedef struct {
  PyObject_HEAD
  smtpc_mbox *mb;
} MboxObject;

static int mbox_init(MboxObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {NULL};
  if (!PyArg_ParseTupleAndKeywords(args, kw, ":_Mbox", kwlist)) return -1;
  smtpc_mbox_free(self->mb);
  if ((self->mb = smtpc_mbox_new()) == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  return 0;
}

static void mbox_dealloc(MboxObject *self) {
  smtpc_mbox_free(self->mb);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *mbox_feed(MboxObject *self, PyObject *args) {
  Py_buffer view;
  int eof = 0;
  if (self->mb == NULL) return PyErr_Format(PyExc_ValueError, "_Mbox not initialised");
  if (!PyArg_ParseTuple(args, "y*|p:feed", &view, &eof)) return NULL;
  int rc = smtpc_mbox_feed(self->mb, view.buf, (size_t)view.len, eof);
  PyBuffer_Release(&view);
  if (rc < 0) return PyErr_NoMemory();
  PyObject *list = PyList_New(0);
  const char *msg;
  size_t len;
  while (list && smtpc_mbox_next(self->mb, &msg, &len) == 1) {
    PyObject *b = PyBytes_FromStringAndSize(msg, (Py_ssize_t)len);
    if (b == NULL || PyList_Append(list, b) < 0) {
      Py_XDECREF(b);
      Py_CLEAR(list);
      break;
    }
    Py_DECREF(b);
  }
  return list;
}

static PyMethodDef mbox_methods[] = {
  {"feed", (PyCFunction)mbox_feed, METH_VARARGS,
   "feed(data: bytes, eof: bool = False) -> list[bytes]: the messages completed so far"},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject MboxType = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "smtpcode._Mbox",
  .tp_basicsize = sizeof(MboxObject),
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "Splits an mbox (mboxo/mboxrd) fed in chunks into messages.",
  .tp_new = PyType_GenericNew,
  .tp_init = (initproc)mbox_init,
  .tp_dealloc = (destructor)mbox_dealloc,
  .tp_methods = mbox_methods,
};

static PyMethodDef bounce_methods[] = {
  {"parse_bounce", py_parse_bounce, METH_O,
   "parse_bounce(message: bytes) -> list[Bounce]\n\n"
   "One record per recipient of a bounce (kind 'bounce'), of an ARF report ('feedback') or of\n"
   "an auto-reply ('autoreply'); [] for any other message. Raises BounceError when the message\n"
   "exceeds a limit (line length, header fields, MIME parts, nesting)."},
  {NULL, NULL, 0, NULL},
};

int pysmtpc_init_bounce(PyObject *m) {
  if (BounceType == NULL) {
    int i = 0;
#define SMTPC__XX(id, nm) bounce_fields[i].name = nm; bounce_fields[i++].doc = NULL;
    SMTPC_BOUNCE_FIELD_MAP(SMTPC__XX)
#undef SMTPC__XX
#define XX(n, d) bounce_fields[i].name = #n; bounce_fields[i++].doc = d;
    EXTRA_FIELDS(XX)
#undef XX
    bounce_fields[i].name = NULL;
    if ((BounceType = PyStructSequence_NewType(&bounce_desc)) == NULL) return -1;
  }
  if (PyType_Ready(&MboxType) < 0) return -1;
  if (BounceError == NULL &&
      (BounceError = PyErr_NewExceptionWithDoc("smtpcode.BounceError",
                                               "A message beyond the bounce parser's limits.",
                                               PyExc_ValueError, NULL)) == NULL)
    return -1;
  Py_INCREF(BounceError);
  Py_INCREF(BounceType);
  Py_INCREF(&MboxType);
  if (PyModule_AddObject(m, "BounceError", BounceError) < 0 ||
      PyModule_AddObject(m, "Bounce", (PyObject *)BounceType) < 0 ||
      PyModule_AddObject(m, "_Mbox", (PyObject *)&MboxType) < 0)
    return -1;
  return PyModule_AddFunctions(m, bounce_methods);
}
