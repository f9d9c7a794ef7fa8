/*
 * _plan.c -- the planner (csrc/plan.c) for Python drivers: smtpcode._smtpcode._Plan. Types in,
 * types out, nothing decided here; smtpcode.aio is the asyncio driver built on it.
 *
 *   p = _Plan(mail_from=..., helo=..., <the options of verify()>, seed=0)
 *   p.add(address, tag); p.end(); p.cancel(now)
 *   p.resolved(now, token, route_or_None)      route: a smtpcode.Route (smtpcode.resolve)
 *   p.connected(now, sid); p.read(now, sid, data); p.tls(now, sid, ok)
 *   p.eof(now, sid, detail_or_None); p.released(now, sid); p.tick(now)
 *   p.drain(now) -> list of actions, each a tuple whose first item names it:
 *     ("resolve", token, domain) ("connect", sid, ip, port, mx) ("write", sid, bytes)
 *     ("start_tls", sid, mx) ("close", sid) ("wake", time) ("result", Result)
 * Times are integers in microseconds of the driver's clock (asyncio: loop.time() * 1e6).
 */
#include "_smtpcode.h" /* Python.h first, as Python requires */

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  PyObject_HEAD
  smtpc_plan *p; /* it copies the option strings it keeps */
} PlanObject;

static PyObject *act_name[SMTPC_PLAN_ACTION_COUNT];

static int plan_init(PlanObject *self, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"mail_from", "helo", "port", "concurrency", "per_host",
                           "rcpt_per_session", "starttls", "catch_all", "greylist_delay",
                           "deadline", "timeout", "transcript", "connect_timeout",
                           "max_rejections", "host_pause", "seed", "disposable", NULL};
  const char *mail_from = NULL, *helo = NULL, *starttls = "opportunistic", *disposable = "risky";
  int catch_all = 1, transcript = 0, err = 0;
  unsigned long long seed = 0;
  smtpc_plan_opts po;
  smtpc_verify_opts *o = &po.verify;
  memset(&po, 0, sizeof po);
  smtpc_verify_opts_init(o);
  if (!PyArg_ParseTupleAndKeywords(args, kw, "|$zziiiispdddpdidKs:_Plan", kwlist, &mail_from,
                                   &helo, &o->port, &o->concurrency, &o->per_host,
                                   &o->rcpt_per_session, &starttls, &catch_all,
                                   &o->greylist_delay, &o->deadline, &o->timeout, &transcript,
                                   &o->connect_timeout, &o->max_rejections, &o->host_pause,
                                   &seed, &disposable))
    return -1;
  if (pysmtpc_verify_opts_check(o, starttls, disposable, "_Plan()") < 0) return -1;
  o->mail_from = mail_from;
  o->helo = helo;
  o->catch_all = catch_all;
  o->transcript = transcript;
  po.seed = seed;
  smtpc_plan_free(self->p);
  self->p = smtpc_plan_new(&po, &err);
  if (self->p == NULL) {
    if (err == SMTPC_ENOMEM) PyErr_NoMemory();
    else PyErr_Format(PyExc_ValueError, "invalid options: %s", smtpc_strerror(err));
    return -1;
  }
  return 0;
}

static void plan_dealloc(PlanObject *self) {
  smtpc_plan_free(self->p);
  Py_TYPE(self)->tp_free((PyObject *)self);
}

#define PLAN(self)                                                       \
  do {                                                                   \
    if ((self)->p == NULL) {                                             \
      PyErr_SetString(PyExc_ValueError, "_Plan was not initialised");    \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

static PyObject *rc_result(int rc) {
  if (rc == SMTPC_ENOMEM) return PyErr_NoMemory();
  return PyBool_FromLong(rc == 0);
}

static PyObject *plan_add(PlanObject *self, PyObject *args) {
  PyObject *s, *b;
  unsigned long long tag;
  unsigned long long now;
  int rc;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "KUK:add", &now, &s, &tag)) return NULL;
  /* surrogatepass keeps lone surrogates as bytes: the parser calls them invalid UTF-8 */
  if ((b = PyUnicode_AsEncodedString(s, "utf-8", "surrogatepass")) == NULL) return NULL;
  rc = smtpc_plan_add(self->p, now, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b), tag);
  Py_DECREF(b);
  if (rc == SMTPC_EINVAL) {
    PyErr_SetString(PyExc_RuntimeError, "add() after end() or cancel()");
    return NULL;
  }
  return rc_result(rc);
}

static PyObject *plan_end(PlanObject *self, PyObject *unused) {
  (void)unused;
  PLAN(self);
  smtpc_plan_end(self->p);
  Py_RETURN_NONE;
}

static PyObject *plan_cancel(PlanObject *self, PyObject *args) {
  unsigned long long now;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "K:cancel", &now)) return NULL;
  smtpc_plan_cancel(self->p, now);
  Py_RETURN_NONE;
}

static PyObject *plan_tick(PlanObject *self, PyObject *args) {
  unsigned long long now;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "K:tick", &now)) return NULL;
  smtpc_plan_tick(self->p, now);
  Py_RETURN_NONE;
}

/* A smtpcode.Route (domain, mx, implicit, null_mx, error, ttl) into a smtpc_route. */
static PyObject *plan_resolved(PlanObject *self, PyObject *args) {
  unsigned long long now, token;
  PyObject *route, *mxs = NULL, *err = NULL;
  smtpc_route r;
  smtpc_mx *mx = NULL;
  smtpc_sockaddr *sa = NULL;
  Py_ssize_t i, j, nmx, naddr = 0, k = 0;
  int rc;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "KKO:resolved", &now, &token, &route)) return NULL;
  if (route == Py_None)
    return rc_result(smtpc_plan_resolved(self->p, now, token, SMTPC_EDNS, NULL));
  memset(&r, 0, sizeof r);
  if (!PyTuple_Check(route) || PyTuple_GET_SIZE(route) < 6) {
    PyErr_SetString(PyExc_TypeError, "resolved() takes a smtpcode.Route or None");
    return NULL;
  }
  mxs = PyTuple_GET_ITEM(route, 1);
  err = PyTuple_GET_ITEM(route, 4);
  r.domain = "";
  r.implicit = PyObject_IsTrue(PyTuple_GET_ITEM(route, 2));
  r.null_mx = PyObject_IsTrue(PyTuple_GET_ITEM(route, 3));
  if (err != Py_None) {
    const char *e = PyUnicode_AsUTF8(err);
    if (e == NULL) return NULL;
    r.error = SMTPC_DNS_SERVFAIL;
    for (i = 1; i < SMTPC_DNS_ERROR_COUNT; i++)
      if (strcmp(smtpc_dns_error_name((int)i), e) == 0) r.error = (int)i;
  }
  if (!PyList_Check(mxs)) {
    PyErr_SetString(PyExc_TypeError, "Route.mx must be a list");
    return NULL;
  }
  nmx = PyList_GET_SIZE(mxs);
  for (i = 0; i < nmx; i++) {
    PyObject *m = PyList_GET_ITEM(mxs, i);
    if (!PyTuple_Check(m) || PyTuple_GET_SIZE(m) < 3 || !PyList_Check(PyTuple_GET_ITEM(m, 2))) {
      PyErr_SetString(PyExc_TypeError, "Route.mx items must be smtpcode.MX");
      return NULL;
    }
    naddr += PyList_GET_SIZE(PyTuple_GET_ITEM(m, 2));
  }
  mx = PyMem_Calloc((size_t)nmx + 1, sizeof *mx);
  sa = PyMem_Calloc((size_t)naddr + 1, sizeof *sa);
  if (mx == NULL || sa == NULL) {
    PyMem_Free(mx);
    PyMem_Free(sa);
    return PyErr_NoMemory();
  }
  for (i = 0; i < nmx; i++) {
    PyObject *m = PyList_GET_ITEM(mxs, i), *addrs = PyTuple_GET_ITEM(m, 2);
    mx[i].preference = (int)PyLong_AsLong(PyTuple_GET_ITEM(m, 0));
    mx[i].host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(m, 1));
    if (mx[i].host == NULL) goto fail;
    mx[i].addrs = sa + k;
    for (j = 0; j < PyList_GET_SIZE(addrs); j++) {
      const char *a = PyUnicode_AsUTF8(PyList_GET_ITEM(addrs, j));
      if (a == NULL) goto fail;
      if (inet_pton(AF_INET, a, &sa[k].in.sin_addr) == 1) sa[k].in.sin_family = AF_INET;
      else if (inet_pton(AF_INET6, a, &sa[k].in6.sin6_addr) == 1) sa[k].in6.sin6_family = AF_INET6;
      else continue; /* not an address: left out, as the resolver leaves out what it can't use */
      k++;
      mx[i].naddrs++;
    }
  }
  /* hosts without an address are left out of a route (the header's promise) */
  for (i = j = 0; i < nmx; i++)
    if (mx[i].naddrs) mx[j++] = mx[i];
  r.nmx = (size_t)j;
  r.mx = mx;
  if (r.nmx == 0 && r.error == SMTPC_DNS_OK && !r.null_mx) r.error = SMTPC_DNS_NOADDRESS;
  rc = smtpc_plan_resolved(self->p, now, token, 0, &r);
  PyMem_Free(mx);
  PyMem_Free(sa);
  return rc_result(rc);
fail:
  PyMem_Free(mx);
  PyMem_Free(sa);
  return NULL;
}

static PyObject *plan_connected(PlanObject *self, PyObject *args) {
  unsigned long long now;
  unsigned sid;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "KI:connected", &now, &sid)) return NULL;
  return rc_result(smtpc_plan_connected(self->p, now, sid));
}

static PyObject *plan_read(PlanObject *self, PyObject *args) {
  unsigned long long now;
  unsigned sid;
  Py_buffer b;
  int rc;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "KIy*:read", &now, &sid, &b)) return NULL;
  rc = smtpc_plan_read(self->p, now, sid, b.buf, (size_t)b.len);
  PyBuffer_Release(&b);
  return rc_result(rc);
}

static PyObject *plan_tls(PlanObject *self, PyObject *args) {
  unsigned long long now;
  unsigned sid;
  int ok;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "KIp:tls", &now, &sid, &ok)) return NULL;
  return rc_result(smtpc_plan_tls(self->p, now, sid, ok));
}

/* The planner keeps detail texts by pointer: the few a driver passes are interned here. */
static const char *keep_detail(PyObject *detail) {
  static PyObject *seen;
  PyObject *k;
  if (detail == Py_None) return NULL;
  if (seen == NULL && (seen = PyDict_New()) == NULL) return NULL;
  if ((k = PyDict_GetItemWithError(seen, detail)) == NULL) {
    if (PyErr_Occurred() || PyDict_Size(seen) > 256) {
      PyErr_Clear();
      return "connection failed";
    }
    if (PyDict_SetItem(seen, detail, detail) < 0) {
      PyErr_Clear();
      return "connection failed";
    }
    k = detail;
  }
  return PyUnicode_AsUTF8(k);
}

static PyObject *plan_eof(PlanObject *self, PyObject *args) {
  unsigned long long now;
  unsigned sid;
  PyObject *detail = Py_None;
  int timeout = 0;
  const char *d;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "KI|Op:eof", &now, &sid, &detail, &timeout)) return NULL;
  if (detail != Py_None && !PyUnicode_Check(detail)) {
    PyErr_SetString(PyExc_TypeError, "eof(): detail must be a str or None");
    return NULL;
  }
  d = keep_detail(detail);
  if (d == NULL && PyErr_Occurred()) PyErr_Clear();
  return rc_result(smtpc_plan_eof(self->p, now, sid, timeout ? SMTPC_ETIMEOUT : SMTPC_ECLOSED, d));
}

static PyObject *plan_released(PlanObject *self, PyObject *args) {
  unsigned long long now;
  unsigned sid;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "KI:released", &now, &sid)) return NULL;
  return rc_result(smtpc_plan_released(self->p, now, sid));
}

static PyObject *action_tuple(const smtpc_plan_action *a) {
  PyObject *name = act_name[a->type];
  char ip[64];
  switch (a->type) {
  case SMTPC_PLAN_RESOLVE:
    return Py_BuildValue("(OKs)", name, (unsigned long long)a->token, a->name);
  case SMTPC_PLAN_CONNECT: {
    int port;
    ip[0] = '\0';
    if (a->addr->sa.sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &a->addr->in6.sin6_addr, ip, sizeof ip);
      port = ntohs(a->addr->in6.sin6_port);
    } else {
      inet_ntop(AF_INET, &a->addr->in.sin_addr, ip, sizeof ip);
      port = ntohs(a->addr->in.sin_port);
    }
    return Py_BuildValue("(OIsis)", name, a->sid, ip, port, a->name);
  }
  case SMTPC_PLAN_WRITE:
    return Py_BuildValue("(OIy#)", name, a->sid, a->data, (Py_ssize_t)a->len);
  case SMTPC_PLAN_START_TLS:
    return Py_BuildValue("(OIs)", name, a->sid, a->name);
  case SMTPC_PLAN_CLOSE:
    return Py_BuildValue("(OI)", name, a->sid);
  case SMTPC_PLAN_WAKE:
    return Py_BuildValue("(OK)", name, (unsigned long long)a->time);
  case SMTPC_PLAN_RESULT: {
    PyObject *r = pysmtpc_result_new(a->result), *t;
    if (r == NULL) return NULL;
    t = PyTuple_Pack(2, name, r);
    Py_DECREF(r);
    return t;
  }
  }
  PyErr_SetString(PyExc_RuntimeError, "unknown planner action");
  return NULL;
}

static PyObject *plan_drain(PlanObject *self, PyObject *args) {
  unsigned long long now;
  smtpc_plan_action a;
  PyObject *list;
  PLAN(self);
  if (!PyArg_ParseTuple(args, "K:drain", &now)) return NULL;
  if ((list = PyList_New(0)) == NULL) return NULL;
  while (smtpc_plan_next(self->p, now, &a)) {
    PyObject *t = action_tuple(&a);
    /* an action that cannot be made is lost with the exception: the driver stops anyway */
    if (t == NULL || PyList_Append(list, t) < 0) {
      Py_XDECREF(t);
      Py_DECREF(list);
      return NULL;
    }
    Py_DECREF(t);
  }
  return list;
}

static PyObject *plan_get_pending(PlanObject *self, void *closure) {
  smtpc_plan_stats st;
  (void)closure;
  PLAN(self);
  smtpc_plan_stats_get(self->p, &st);
  return PyLong_FromSize_t(st.pending);
}

static PyObject *plan_get_done(PlanObject *self, void *closure) {
  (void)closure;
  PLAN(self);
  return PyBool_FromLong(smtpc_plan_done(self->p));
}

static PyObject *plan_get_stats(PlanObject *self, void *closure) {
  smtpc_plan_stats st;
  (void)closure;
  PLAN(self);
  smtpc_plan_stats_get(self->p, &st);
  return Py_BuildValue("{s:n,s:n,s:K,s:K,s:n,s:n}", "pending", (Py_ssize_t)st.pending,
                       "sessions", (Py_ssize_t)st.sessions, "sessions_opened",
                       (unsigned long long)st.sessions_opened, "results",
                       (unsigned long long)st.results, "memory", (Py_ssize_t)st.memory,
                       "memory_peak", (Py_ssize_t)st.memory_peak);
}

static PyMethodDef plan_methods[] = {
  {"add", (PyCFunction)plan_add, METH_VARARGS, "add(now, address, tag) -> bool"},
  {"end", (PyCFunction)plan_end, METH_NOARGS, "end(): no more input"},
  {"cancel", (PyCFunction)plan_cancel, METH_VARARGS, "cancel(now): report all, close all"},
  {"tick", (PyCFunction)plan_tick, METH_VARARGS, "tick(now): the scheduling pass (at a wake)"},
  {"resolved", (PyCFunction)plan_resolved, METH_VARARGS,
   "resolved(now, token, route): a smtpcode.Route, or None when the lookup failed"},
  {"connected", (PyCFunction)plan_connected, METH_VARARGS, "connected(now, sid)"},
  {"read", (PyCFunction)plan_read, METH_VARARGS, "read(now, sid, data): plain text in"},
  {"tls", (PyCFunction)plan_tls, METH_VARARGS, "tls(now, sid, ok): the handshake's outcome"},
  {"eof", (PyCFunction)plan_eof, METH_VARARGS,
   "eof(now, sid, detail=None, timeout=False): the connection failed or closed"},
  {"released", (PyCFunction)plan_released, METH_VARARGS, "released(now, sid): after close"},
  {"drain", (PyCFunction)plan_drain, METH_VARARGS, "drain(now) -> list of action tuples"},
  {NULL, NULL, 0, NULL},
};

static PyGetSetDef plan_getset[] = {
  {"pending", (getter)plan_get_pending, NULL, "addresses added and not yet reported", NULL},
  {"done", (getter)plan_get_done, NULL, "end() was called and everything is reported", NULL},
  {"stats", (getter)plan_get_stats, NULL, "planner counters (dict)", NULL},
  {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PlanType = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "smtpcode._Plan",
  .tp_basicsize = sizeof(PlanObject),
  .tp_dealloc = (destructor)plan_dealloc,
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "The probe planner (events in, actions out) for Python drivers; see smtpcode.aio.",
  .tp_methods = plan_methods,
  .tp_getset = plan_getset,
  .tp_init = (initproc)plan_init,
  .tp_new = PyType_GenericNew,
};

int pysmtpc_init_plan(PyObject *module) {
  int i;
  for (i = 1; i < SMTPC_PLAN_ACTION_COUNT; i++)
    if ((act_name[i] = PyUnicode_InternFromString(smtpc_plan_action_name(i))) == NULL) return -1;
  if (PyType_Ready(&PlanType) < 0) return -1;
  Py_INCREF(&PlanType);
  if (PyModule_AddObject(module, "_Plan", (PyObject *)&PlanType) < 0) {
    Py_DECREF(&PlanType);
    return -1;
  }
  return 0;
}
