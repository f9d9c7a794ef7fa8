/*
 * _smtpcode.c -- the Python extension module smtpcode._smtpcode.
 *
 * A thin binding in the manner of hiredis-py: the C layer builds the Python objects directly
 * (Reply, Explanation, Reader) and makes no decision of its own. Reply objects are immutable.
 * Text from the wire is decoded as UTF-8 with replacement characters for invalid bytes: a reply
 * is never rejected for its encoding.
 */
#include "_smtpcode.h"

#include <string.h>
#include <structmember.h>

PyObject *pysmtpc_ReplyError = NULL;

/* Interned strings made once: reason and kind names are shared by every Reply. */
static PyObject *reason_str[SMTPC_REASON_COUNT];

/* ---------------------------------------------------------------------------------------- */
/* Reply */

typedef struct {
  PyObject_HEAD
  PyObject *code, *status, *text, *lines, *kind, *temporary, *reason, *hard_bounce, *retry,
      *retry_after, *greylisted, *provider, *command, *code_source, *code_inferred;
} ReplyObject;

#define REPLY_FIELDS(XX)                                                            \
  XX(code, "3-digit reply code, or None")                                          \
  XX(status, "enhanced status code such as '5.1.1' (RFC 3463), or None")          \
  XX(text, "reply text, lines joined by newlines, codes and status prefixes removed") \
  XX(lines, "tuple of the text lines")                                             \
  XX(kind, "'success', 'intermediate', 'transient', 'permanent' or 'unknown'")     \
  XX(temporary, "True for a transient (4xx) failure")                              \
  XX(reason, "reason name, e.g. 'userunknown'")                                    \
  XX(hard_bounce, "True when retrying can never succeed for this address")         \
  XX(retry, "True when a sender should try again later")                           \
  XX(retry_after, "seconds to wait before a retry when the reply implies it, or None") \
  XX(greylisted, "True for a greylisting deferral")                                \
  XX(provider, "provider whose rules matched ('google', 'microsoft' ...), or None") \
  XX(command, "command the reply answered, given or named by its framing ('RCPT' ...), or None") \
  XX(code_source, "where code came from: 'text', 'given', 'provider' (then see code_inferred) or None") \
  XX(code_inferred, "the code the provider documents for this text when the text held none, else None")

static PyTypeObject ReplyType;

static PyObject *text_from(const char *p, size_t n) { return PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "replace"); }

static PyObject *opt_str(const char *s) {
  if (s == NULL || s[0] == '\0') Py_RETURN_NONE;
  return PyUnicode_FromString(s);
}

/* code_source is one of a few fixed words: the same str objects every time. */
static PyObject *source_str(const char *s) {
  static const char *const names[] = {"text", "given", "provider"};
  static PyObject *cache[3];
  size_t i;
  if (s == NULL) Py_RETURN_NONE;
  for (i = 0; i < 3; i++) {
    if (strcmp(s, names[i]) != 0) continue;
    if (cache[i] == NULL && (cache[i] = PyUnicode_InternFromString(names[i])) == NULL) return NULL;
    Py_INCREF(cache[i]);
    return cache[i];
  }
  return PyUnicode_FromString(s);
}

static PyObject *reply_build(int code, const char *status, const char *kind, const smtpc_class *c,
                             const smtpc_span *lines, size_t nlines, const char *code_source,
                             int code_inferred) {
  ReplyObject *r = PyObject_New(ReplyObject, &ReplyType);
  size_t i, total = 0;
  char *joined, *w;
  if (r == NULL) return NULL;
  r->code = code ? PyLong_FromLong(code) : (Py_INCREF(Py_None), Py_None);
  r->status = opt_str(status);
  r->kind = PyUnicode_InternFromString(kind);
  r->temporary = PyBool_FromLong(c->temporary);
  r->reason = reason_str[c->reason];
  Py_INCREF(r->reason);
  r->hard_bounce = PyBool_FromLong(c->hard_bounce);
  r->retry = PyBool_FromLong(c->retry);
  r->retry_after = c->retry_after > 0 ? PyLong_FromLong(c->retry_after) : (Py_INCREF(Py_None), Py_None);
  r->greylisted = PyBool_FromLong(c->greylisted);
  r->provider = opt_str(c->provider);
  r->command = opt_str(c->command);
  r->code_source = source_str(code_source);
  r->code_inferred = code_inferred ? PyLong_FromLong(code_inferred) : (Py_INCREF(Py_None), Py_None);
  r->lines = PyTuple_New((Py_ssize_t)nlines);
  r->text = NULL;
  if (r->lines) {
    for (i = 0; i < nlines; i++) {
      PyObject *s = text_from(lines[i].ptr, lines[i].len);
      if (s == NULL) break;
      PyTuple_SET_ITEM(r->lines, (Py_ssize_t)i, s);
      total += lines[i].len + 1;
    }
    if (i == nlines) {
      if (nlines == 1) {
        r->text = PyTuple_GET_ITEM(r->lines, 0);
        Py_INCREF(r->text);
      } else if ((joined = PyMem_Malloc(total + 1)) != NULL) {
        for (w = joined, i = 0; i < nlines; i++) {
          if (i) *w++ = '\n';
          memcpy(w, lines[i].ptr, lines[i].len);
          w += lines[i].len;
        }
        r->text = text_from(joined, (size_t)(w - joined));
        PyMem_Free(joined);
      } else {
        PyErr_NoMemory();
      }
    }
  }
  if (!r->code || !r->status || !r->kind || !r->temporary || !r->hard_bounce || !r->retry ||
      !r->retry_after || !r->greylisted || !r->provider || !r->command || !r->code_source ||
      !r->code_inferred || !r->lines || !r->text) {
    Py_DECREF(r);
    return NULL;
  }
  return (PyObject *)r;
}

PyObject *pysmtpc_reply_new(const smtpc_decoded *d) {
  return reply_build(d->code, d->status, d->kind, &d->cls, d->lines, d->nlines, d->code_source,
                     d->code_inferred);
}

static void reply_dealloc(ReplyObject *r) {
#define XX(f, doc) Py_XDECREF(r->f);
  REPLY_FIELDS(XX)
#undef XX
  PyObject_Free(r);
}

static PyObject *reply_to_dict(ReplyObject *r, PyObject *unused) {
  PyObject *d = PyDict_New();
  (void)unused;
  if (d == NULL) return NULL;
#define XX(f, doc)                                                                   \
  if (strcmp(#f, "lines") == 0) {                                                    \
    PyObject *l = PySequence_List(r->f);                                             \
    if (l == NULL || PyDict_SetItemString(d, #f, l) < 0) { Py_XDECREF(l); Py_DECREF(d); return NULL; } \
    Py_DECREF(l);                                                                    \
  } else if (PyDict_SetItemString(d, #f, r->f) < 0) {                                \
    Py_DECREF(d);                                                                    \
    return NULL;                                                                     \
  }
  REPLY_FIELDS(XX)
#undef XX
  return d;
}

static PyObject *reply_repr(ReplyObject *r) {
  return PyUnicode_FromFormat("Reply(code=%R, status=%R, kind=%R, reason=%R, hard_bounce=%R, text=%R)", r->code,
                              r->status, r->kind, r->reason, r->hard_bounce, r->text);
}

static PyObject *reply_richcompare(PyObject *a, PyObject *b, int op) {
  PyObject *da, *db, *res;
  if ((op != Py_EQ && op != Py_NE) || !PyObject_TypeCheck(b, &ReplyType)) Py_RETURN_NOTIMPLEMENTED;
  da = reply_to_dict((ReplyObject *)a, NULL);
  db = da ? reply_to_dict((ReplyObject *)b, NULL) : NULL;
  res = db ? PyObject_RichCompare(da, db, op) : NULL;
  Py_XDECREF(da);
  Py_XDECREF(db);
  return res;
}

static PyMemberDef reply_members[] = {
#define XX(f, doc) {#f, T_OBJECT_EX, offsetof(ReplyObject, f), READONLY, doc},
  REPLY_FIELDS(XX)
#undef XX
  {NULL, 0, 0, 0, NULL},
};

static PyMethodDef reply_methods[] = {
  {"to_dict", (PyCFunction)reply_to_dict, METH_NOARGS, "The fields as a plain dict (lines as a list)."},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject ReplyType = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "smtpcode.Reply",
  .tp_basicsize = sizeof(ReplyObject),
  .tp_dealloc = (destructor)reply_dealloc,
  .tp_repr = (reprfunc)reply_repr,
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "A decoded SMTP reply (immutable). Made by decode(), classify() and Reader.",
  .tp_richcompare = reply_richcompare,
  .tp_methods = reply_methods,
  .tp_members = reply_members,
};

/* ---------------------------------------------------------------------------------------- */
/* decode / classify */

/* Borrow the bytes of a str (UTF-8) or a bytes-like object. */
static int get_text(PyObject *o, Py_buffer *view, const char **p, Py_ssize_t *n) {
  view->obj = NULL;
  if (PyUnicode_Check(o)) {
    *p = PyUnicode_AsUTF8AndSize(o, n);
    return *p ? 0 : -1;
  }
  if (PyObject_GetBuffer(o, view, PyBUF_SIMPLE) < 0) {
    PyErr_Format(PyExc_TypeError, "expected str or bytes, not %.100s", Py_TYPE(o)->tp_name);
    return -1;
  }
  *p = view->buf;
  *n = view->len;
  return 0;
}

static int get_context(PyObject *command, PyObject *host, smtpc_context *ctx) {
  ctx->command = NULL;
  ctx->host = NULL;
  if (command && command != Py_None && (ctx->command = PyUnicode_AsUTF8(command)) == NULL) return -1;
  if (host && host != Py_None && (ctx->host = PyUnicode_AsUTF8(host)) == NULL) return -1;
  return 0;
}

static PyObject *reply_error(int rc) {
  PyErr_SetString(rc == SMTPC_ENOMEM ? PyExc_MemoryError : pysmtpc_ReplyError, smtpc_strerror(rc));
  return NULL;
}

static PyObject *py_decode(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"text", "command", "host", NULL};
  PyObject *text, *command = NULL, *host = NULL, *res;
  Py_buffer view;
  const char *p;
  Py_ssize_t n;
  smtpc_context ctx;
  smtpc_decoded d;
  int rc;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$OO:decode", kwlist, &text, &command, &host))
    return NULL;
  if (get_context(command, host, &ctx) < 0 || get_text(text, &view, &p, &n) < 0) return NULL;
  rc = smtpc_decode(p, (size_t)n, &ctx, &d);
  res = rc < 0 ? reply_error(rc) : pysmtpc_reply_new(&d);
  if (view.obj) PyBuffer_Release(&view);
  return res;
}

static PyObject *py_classify(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"code", "status", "text", "command", "host", NULL};
  PyObject *code = Py_None, *status = Py_None, *text = Py_None, *command = NULL, *host = NULL, *res;
  Py_buffer view;
  const char *p = "", *st = NULL;
  Py_ssize_t n = 0;
  long c = 0;
  smtpc_context ctx;
  smtpc_decoded d;
  int rc;
  (void)self;
  view.obj = NULL;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOO$OO:classify", kwlist, &code, &status, &text, &command, &host))
    return NULL;
  if (code != Py_None) {
    c = PyLong_AsLong(code);
    if (c == -1 && PyErr_Occurred()) return NULL;
    if (c < 100 || c > 599) return reply_error(SMTPC_EINVAL);
  }
  if (status != Py_None && (st = PyUnicode_AsUTF8(status)) == NULL) return NULL;
  if (get_context(command, host, &ctx) < 0) return NULL;
  if (text != Py_None && get_text(text, &view, &p, &n) < 0) return NULL;
  rc = smtpc_classify((int)c, st, p, (size_t)n, &ctx, &d);
  res = rc < 0 ? reply_error(rc) : pysmtpc_reply_new(&d);
  if (view.obj) PyBuffer_Release(&view);
  return res;
}

/* ---------------------------------------------------------------------------------------- */
/* explain */

static PyTypeObject *ExplanationType;

static PyStructSequence_Field explanation_fields[] = {
  {"key", "the normalised key: '550', '5.1.1', 'X.1.1', '5xx', '5.x.x' or a reason name"},
  {"title", "a short title"},
  {"description", "what the reply means"},
  {"action", "what the sender should do (the same text as fixes)"},
  {"causes", "why it happens: the usual causes"},
  {"fixes", "what the sender should do about it"},
  {NULL, NULL},
};

static PyStructSequence_Desc explanation_desc = {"smtpcode.Explanation", "A catalog entry.", explanation_fields, 4};

static PyObject *py_explain(PyObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"key", "lang", NULL};
  PyObject *key, *res;
  const char *lang = "en";
  smtpc_explanation e;
  int rc;
  (void)self;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|s:explain", kwlist, &key, &lang)) return NULL;
  if (PyLong_Check(key) && !PyBool_Check(key)) {
    long c = PyLong_AsLong(key);
    if (c == -1 && PyErr_Occurred()) {
      PyErr_Clear();
      c = -1;
    }
    rc = smtpc_explain_code(c < 0 || c > 100000 ? -1 : (int)c, lang, &e);
  } else if (PyUnicode_Check(key)) {
    Py_ssize_t n;
    const char *k = PyUnicode_AsUTF8AndSize(key, &n);
    if (k == NULL) return NULL;
    rc = smtpc_explain(k, (size_t)n, lang, &e);
  } else {
    return PyErr_Format(PyExc_TypeError, "key must be int or str, not %.100s", Py_TYPE(key)->tp_name);
  }
  if (rc < 0) return reply_error(rc);
  res = PyStructSequence_New(ExplanationType);
  if (res == NULL) return NULL;
  PyStructSequence_SET_ITEM(res, 0, PyUnicode_FromString(e.key));
  PyStructSequence_SET_ITEM(res, 1, PyUnicode_FromString(e.title));
  PyStructSequence_SET_ITEM(res, 2, PyUnicode_FromString(e.description));
  PyStructSequence_SET_ITEM(res, 3, PyUnicode_FromString(e.action));
  /* causes and fixes are named fields past the 4-tuple, so code that unpacks the tuple keeps
   * working */
  PyStructSequence_SET_ITEM(res, 4, PyUnicode_FromString(e.causes));
  PyStructSequence_SET_ITEM(res, 5, PyUnicode_FromString(e.fixes));
  if (!PyStructSequence_GET_ITEM(res, 0) || !PyStructSequence_GET_ITEM(res, 1) ||
      !PyStructSequence_GET_ITEM(res, 2) || !PyStructSequence_GET_ITEM(res, 3) ||
      !PyStructSequence_GET_ITEM(res, 4) || !PyStructSequence_GET_ITEM(res, 5)) {
    Py_DECREF(res);
    return NULL;
  }
  return res;
}

static PyObject *py_reasons(PyObject *self, PyObject *unused) {
  PyObject *t = PyTuple_New(SMTPC_REASON_COUNT);
  int i;
  (void)self;
  (void)unused;
  if (t == NULL) return NULL;
  for (i = 0; i < SMTPC_REASON_COUNT; i++) {
    Py_INCREF(reason_str[i]);
    PyTuple_SET_ITEM(t, i, reason_str[i]);
  }
  return t;
}

/* ---------------------------------------------------------------------------------------- */
/* Reader */

typedef struct {
  PyObject_HEAD
  smtpc_reader *r;
} ReaderObject;

static int reader_init(ReaderObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"max_line", "max_lines", "max_reply", NULL};
  Py_ssize_t ml = 0, mn = 0, mr = 0;
  smtpc_limits lim;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|$nnn:Reader", kwlist, &ml, &mn, &mr)) return -1;
  if (ml < 0 || mn < 0 || mr < 0) {
    PyErr_SetString(PyExc_ValueError, "limits must not be negative");
    return -1;
  }
  lim.max_line = (size_t)ml;
  lim.max_lines = (size_t)mn;
  lim.max_reply = (size_t)mr;
  smtpc_reader_free(self->r);
  self->r = smtpc_reader_new(&lim);
  if (self->r == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  return 0;
}

static void reader_dealloc(ReaderObject *self) {
  smtpc_reader_free(self->r);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *reader_raise(ReaderObject *self) {
  uint64_t at = 0;
  int err = smtpc_reader_error(self->r, &at);
  return PyErr_Format(pysmtpc_ReplyError, "%s at offset %llu", smtpc_strerror(err), (unsigned long long)at);
}

static PyObject *reader_feed(ReaderObject *self, PyObject *arg) {
  Py_buffer view;
  int rc;
  if (self->r == NULL) return PyErr_Format(PyExc_ValueError, "Reader not initialised");
  if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
  rc = smtpc_reader_feed(self->r, view.buf, (size_t)view.len);
  PyBuffer_Release(&view);
  if (rc == SMTPC_ENOMEM) return PyErr_NoMemory();
  if (rc < 0) return reader_raise(self);
  Py_RETURN_NONE;
}

static PyObject *reader_next(ReaderObject *self) {
  smtpc_reply rep;
  smtpc_class cls;
  int rc;
  if (self->r == NULL) return PyErr_Format(PyExc_ValueError, "Reader not initialised");
  rc = smtpc_reader_next(self->r, &rep);
  if (rc == 0) return NULL; /* StopIteration */
  if (rc < 0) return reader_raise(self);
  smtpc_classify_lines(rep.code, rep.status, rep.lines, rep.nlines, NULL, &cls);
  return reply_build(rep.code, rep.status, smtpc_kind(rep.code, rep.status), &cls, rep.lines, rep.nlines,
                     rep.code ? "text" : NULL, 0);
}

static PyObject *reader_pending(ReaderObject *self, void *unused) {
  (void)unused;
  return PyLong_FromSize_t(self->r ? smtpc_reader_pending(self->r) : 0);
}

static PyMethodDef reader_methods[] = {
  {"feed", (PyCFunction)reader_feed, METH_O, "feed(data: bytes) -> None; raises ReplyError on a malformed stream."},
  {NULL, NULL, 0, NULL},
};

static PyGetSetDef reader_getset[] = {
  {"pending", (getter)reader_pending, NULL, "octets fed but not yet returned in a reply", NULL},
  {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ReaderType = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "smtpcode.Reader",
  .tp_basicsize = sizeof(ReaderObject),
  .tp_dealloc = (destructor)reader_dealloc,
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "Incremental reply reader: feed() bytes in any chunking, iterate complete replies.",
  .tp_iter = PyObject_SelfIter,
  .tp_iternext = (iternextfunc)reader_next,
  .tp_methods = reader_methods,
  .tp_getset = reader_getset,
  .tp_init = (initproc)reader_init,
  .tp_new = PyType_GenericNew,
};

/* ---------------------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
  {"decode", (PyCFunction)(void (*)(void))py_decode, METH_VARARGS | METH_KEYWORDS,
   "decode(text, *, command=None, host=None) -> Reply"},
  {"classify", (PyCFunction)(void (*)(void))py_classify, METH_VARARGS | METH_KEYWORDS,
   "classify(code, status, text, *, command=None, host=None) -> Reply"},
  {"explain", (PyCFunction)(void (*)(void))py_explain, METH_VARARGS | METH_KEYWORDS,
   "explain(key, lang='en') -> Explanation"},
  {"reasons", py_reasons, METH_NOARGS, "reasons() -> tuple of every reason name"},
  {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
  PyModuleDef_HEAD_INIT, "smtpcode._smtpcode", "C core of smtpcode.", -1, module_methods,
  NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__smtpcode(void);

PyMODINIT_FUNC PyInit__smtpcode(void) {
  PyObject *m;
  int i, built;
  /* the tables otherwise built by the first decode or bounce, which may be on an event loop */
  Py_BEGIN_ALLOW_THREADS
  built = smtpc_library_init();
  Py_END_ALLOW_THREADS
  if (built < 0) return PyErr_NoMemory();
  for (i = 0; i < SMTPC_REASON_COUNT; i++) {
    if (reason_str[i] == NULL && (reason_str[i] = PyUnicode_InternFromString(smtpc_reason_name(i))) == NULL)
      return NULL;
  }
  if (PyType_Ready(&ReplyType) < 0 || PyType_Ready(&ReaderType) < 0) return NULL;
  if (ExplanationType == NULL && (ExplanationType = PyStructSequence_NewType(&explanation_desc)) == NULL)
    return NULL;
  m = PyModule_Create(&module_def);
  if (m == NULL) return NULL;
  pysmtpc_ReplyError = PyErr_NewExceptionWithDoc("smtpcode.ReplyError", "A malformed SMTP reply.",
                                                 PyExc_ValueError, NULL);
  Py_INCREF(&ReplyType);
  Py_INCREF(&ReaderType);
  Py_INCREF(ExplanationType);
  if (pysmtpc_ReplyError == NULL || PyModule_AddObject(m, "ReplyError", pysmtpc_ReplyError) < 0 ||
      PyModule_AddObject(m, "Reply", (PyObject *)&ReplyType) < 0 ||
      PyModule_AddObject(m, "Reader", (PyObject *)&ReaderType) < 0 ||
      PyModule_AddObject(m, "Explanation", (PyObject *)ExplanationType) < 0 ||
      PyModule_AddStringConstant(m, "__version__", SMTPC_VERSION) < 0 || pysmtpc_init_address(m) < 0 ||
      pysmtpc_init_dns(m) < 0 || pysmtpc_init_verify(m) < 0 || pysmtpc_init_inspect(m) < 0 ||
      pysmtpc_init_plan(m) < 0 || pysmtpc_init_bounce(m) < 0 ||
      pysmtpc_init_mxq(m) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  Py_INCREF(pysmtpc_ReplyError); /* kept for the hooks after the module owns one reference */
  return m;
}
