/*
 * _mxq.c -- smtpcode._smtpcode._MxLookup: the route machine of csrc/dns_route.c for a Python
 * driver that carries the DNS messages itself (smtpcode.aio, over asyncio datagrams and
 * streams). Types in, types out: which queries go out and what the answers make of the route
 * are the machine's (the same one that dns.c and smtpcode.resty drive).
 *
 *   lk = _MxLookup("example.test", family="prefer_ipv4")   # ValueError: not a host name
 *   lk.next(txid) -> (id, query bytes) | None   a query to send, with DNS transaction id txid
 *   lk.answer(id, response) -> bool             the response message, whatever its rcode
 *   lk.fail(id, "timeout") -> bool              or "refused", "servfail": no usable response
 *   lk.done() -> bool;  lk.expire()             expire: the deadline; what is missing timed out
 *   lk.route() -> smtpcode.Route                as smtpcode.resolve returns it
 */
#include "_smtpcode.h" /* Python.h first, as Python requires */

#include <string.h>

#include "dns_internal.h"

typedef struct {
  PyObject_HEAD
  smtpc__mxq q;
  uint64_t rng; /* shuffles equal preferences in route() */
  int ready;
} MxqObject;

static int mxq_init(MxqObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"domain", "family", NULL};
  const char *domain, *family = "prefer_ipv4";
  Py_ssize_t len;
  char name[256];
  int f;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s#|$s:_MxLookup", kwlist, &domain, &len, &family))
    return -1;
  if ((f = smtpc__dns_family_of(family)) < 0) {
    PyErr_SetString(PyExc_ValueError, SMTPC__DNS_FAMILY_ERR);
    return -1;
  }
  if (strlen(domain) != (size_t)len || smtpc__dns_name_user(domain, (size_t)len, name) != 0) {
    PyErr_SetString(PyExc_ValueError, "invalid domain name");
    return -1;
  }
  /* the resolver's defaults (dns.c): negative answers kept 60 s at most, any answer an hour */
  smtpc__mxq_init(&self->q, name, f, 60, 3600);
  self->rng = (uint64_t)(uintptr_t)self ^ ((uint64_t)len << 40) ^ 0x2545f4914f6cdd1du;
  self->ready = 1;
  return 0;
}

static int check(MxqObject *self) {
  if (self->ready) return 0;
  PyErr_SetString(PyExc_RuntimeError, "_MxLookup not initialised");
  return -1;
}

static PyObject *mxq_next(MxqObject *self, PyObject *arg) {
  unsigned char buf[12 + 256 + 4];
  unsigned long txid;
  unsigned id;
  const char *name;
  int type, n;
  if (check(self) < 0) return NULL;
  txid = PyLong_AsUnsignedLong(arg);
  if (PyErr_Occurred() || txid > 65535) {
    PyErr_Clear();
    PyErr_SetString(PyExc_ValueError, "next(): the transaction id is 0..65535");
    return NULL;
  }
  if (!smtpc__mxq_next(&self->q, &id, &name, &type)) Py_RETURN_NONE;
  if ((n = smtpc__dns_query(buf, sizeof buf, (unsigned)txid, name, type)) < 0) {
    smtpc__mxq_fail(&self->q, id, SMTPC_DNS_SERVFAIL); /* cannot happen: names are checked */
    PyErr_Format(PyExc_RuntimeError, "_MxLookup: cannot build a query for %s", name);
    return NULL;
  }
  return Py_BuildValue("(Iy#)", id, (const char *)buf, (Py_ssize_t)n);
}

/* A query id as the machine numbers them (0 the MX, then A/AAAA per host), or -1. */
static long read_id(PyObject *o) {
  long id = PyLong_AsLong(o);
  if (id == -1 && PyErr_Occurred()) return -2;
  return id >= 0 && id < 2 * SMTPC__DNS_MAX_MX + 1 ? id : -1;
}

static PyObject *mxq_answer(MxqObject *self, PyObject *args) {
  PyObject *ido;
  const char *m;
  Py_ssize_t n;
  long id;
  if (check(self) < 0 || !PyArg_ParseTuple(args, "Oy#:answer", &ido, &m, &n)) return NULL;
  if ((id = read_id(ido)) == -2) return NULL;
  if (id < 0 || n > 65535) Py_RETURN_FALSE;
  return PyBool_FromLong(smtpc__mxq_answer(&self->q, (unsigned)id, (const unsigned char *)m,
                                           (int)n) == 0);
}

static PyObject *mxq_fail(MxqObject *self, PyObject *args) {
  PyObject *ido;
  const char *kind;
  long id;
  int code;
  if (check(self) < 0 || !PyArg_ParseTuple(args, "Os:fail", &ido, &kind)) return NULL;
  if ((code = smtpc__dns_failure_of(kind)) == 0) {
    PyErr_SetString(PyExc_ValueError, "fail(): kind must be timeout, refused or servfail");
    return NULL;
  }
  if ((id = read_id(ido)) == -2) return NULL;
  if (id < 0) Py_RETURN_FALSE;
  return PyBool_FromLong(smtpc__mxq_fail(&self->q, (unsigned)id, code) == 0);
}

static PyObject *mxq_done(MxqObject *self, PyObject *unused) {
  (void)unused;
  if (check(self) < 0) return NULL;
  return PyBool_FromLong(smtpc__mxq_done(&self->q));
}

static PyObject *mxq_expire(MxqObject *self, PyObject *unused) {
  (void)unused;
  if (check(self) < 0) return NULL;
  smtpc__mxq_expire(&self->q);
  Py_RETURN_NONE;
}

static PyObject *mxq_route(MxqObject *self, PyObject *unused) {
  smtpc__mxq_route_buf *rb;
  PyObject *r;
  (void)unused;
  if (check(self) < 0) return NULL;
  if ((rb = PyMem_Malloc(sizeof *rb)) == NULL) return PyErr_NoMemory(); /* 15 KB: not the stack */
  smtpc__mxq_route(&self->q, rb);
  smtpc__route_shuffle(&rb->route, &self->rng);
  r = pysmtpc_route_new(&rb->route);
  PyMem_Free(rb);
  return r;
}

static PyMethodDef mxq_methods[] = {
  {"next", (PyCFunction)mxq_next, METH_O, "next(txid) -> (id, query) or None"},
  {"answer", (PyCFunction)mxq_answer, METH_VARARGS, "answer(id, response) -> bool"},
  {"fail", (PyCFunction)mxq_fail, METH_VARARGS,
   "fail(id, 'timeout' | 'refused' | 'servfail') -> bool"},
  {"done", (PyCFunction)mxq_done, METH_NOARGS, "done() -> bool: every answer is in"},
  {"expire", (PyCFunction)mxq_expire, METH_NOARGS, "expire(): the deadline has passed"},
  {"route", (PyCFunction)mxq_route, METH_NOARGS, "route() -> smtpcode.Route"},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject MxqType = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "smtpcode._smtpcode._MxLookup",
  .tp_basicsize = sizeof(MxqObject),
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "_MxLookup(domain, *, family='prefer_ipv4'): one domain's MX lookup, no I/O",
  .tp_methods = mxq_methods,
  .tp_init = (initproc)mxq_init,
  .tp_new = PyType_GenericNew,
};

int pysmtpc_init_mxq(PyObject *m) {
  if (PyType_Ready(&MxqType) < 0) return -1;
  Py_INCREF(&MxqType);
  if (PyModule_AddObject(m, "_MxLookup", (PyObject *)&MxqType) < 0) {
    Py_DECREF(&MxqType);
    return -1;
  }
  return 0;
}
