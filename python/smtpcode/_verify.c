/*
 * _verify.c -- smtpcode.verify(): the probe engine as a Python iterator of Result objects.
 *
 * Each call owns a private libuv loop and one smtpc_verifier. __next__ feeds a bounded window
 * of input addresses (pulled lazily from any iterable), then runs the loop one pass at a time
 * with the GIL released. The result callback runs inside uv_run without the GIL, so it only
 * copies each result into a C queue; Python objects are made afterwards, with the GIL held.
 * Dropping the iterator (or breaking out of a for loop) closes the verifier: pending addresses
 * are cancelled and every handle is closed before the loop is freed.
 *
 * Ctrl-C: Python's SIGINT handler only sets a flag, and libuv restarts its poll after EINTR,
 * so a loop waiting for a 60 s greylisting timer would not look at the flag for a minute. A
 * repeating timer of our own (unreferenced: it never keeps the loop alive) bounds every
 * uv_run(UV_RUN_ONCE) to WAKE_MS, after which __next__ checks for signals.
 */
#include "_smtpcode.h" /* Python.h first, as Python requires */

#include <stdlib.h>
#include <string.h>
#include <structmember.h>
#include <uv.h>

#define WAKE_MS 100 /* longest wait before a pending KeyboardInterrupt is seen */

/* Results copied out of the callback (smtpc_result_dup), waiting to be yielded.            */

typedef struct qnode {
  struct qnode *next;
  smtpc_result *r;
} qnode;

/* ---------------------------------------------------------------------------------------- */
/* Result: immutable.                                                                        */

typedef struct {
  PyObject_HEAD
  PyObject *address, *verdict, *reason, *reply, *mx, *mx_address, *catch_all, *tls, *greylisted,
      *error, *detail, *duration, *transcript, *disposable, *role, *free_provider, *suggestion,
      *cached, *age;
} ResultObject;

#define RESULT_FIELDS(XX)                                                                   \
  XX(address, "the input string exactly as given")                                          \
  XX(verdict, "'deliverable', 'undeliverable', 'risky' or 'unknown'")                       \
  XX(reason, "reason name, e.g. 'userunknown', 'delivered', 'networkerror'")                \
  XX(reply, "the decoded last reply (smtpcode.Reply), or None when there was none")         \
  XX(mx, "MX host name used, or None")                                                      \
  XX(mx_address, "IP address of the MX host used, or None")                                 \
  XX(catch_all, "True/False whether the domain accepts any local part; None when unknown")  \
  XX(tls, "True when the deciding session ran over TLS")                                    \
  XX(greylisted, "True when the last reply was a greylisting deferral")                     \
  XX(error, "local or network cause ('TIMEOUT', 'DNS', 'CLOSED' ...), or None")            \
  XX(detail, "short explanation when no reply says it, or None")                            \
  XX(duration, "seconds from queueing the address to its result")                          \
  XX(transcript, "the session transcript (transcript=True), or None")                      \
  XX(disposable, "True when the domain (or one above it) is a throw-away mail service")     \
  XX(role, "True when the local part names a role (info, postmaster, sales ...)")          \
  XX(free_provider, "True when the domain is a free mailbox provider")                     \
  XX(suggestion, "the address with its mistyped domain corrected (the domain has no mail "  \
                 "route), or None")                                                      \
  XX(cached, "True when the result came from the cache (no traffic)")                       \
  XX(age, "seconds since a cached result was learnt (0.0 for a fresh one)")

static PyTypeObject ResultType;
static PyObject *verdict_str[SMTPC_VERDICT_COUNT];
static PyObject *reason_str[SMTPC_REASON_COUNT];

static PyObject *str_or_none(const char *s, size_t n) {
  if (s == NULL) Py_RETURN_NONE;
  return PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "replace");
}

static PyObject *result_new(const smtpc_result *src) {
  ResultObject *r = PyObject_New(ResultObject, &ResultType);
  int verdict = src->verdict >= 0 && src->verdict < SMTPC_VERDICT_COUNT ? src->verdict : 0;
  int reason = src->reason >= 0 && src->reason < SMTPC_REASON_COUNT ? src->reason : 0;
  if (r == NULL) return NULL;
  /* the address goes back as given: surrogatepass undoes what the input encoding did */
  r->address = PyUnicode_DecodeUTF8(src->address, (Py_ssize_t)src->address_len, "surrogatepass");
  r->verdict = verdict_str[verdict];
  Py_INCREF(r->verdict);
  r->reason = reason_str[reason];
  Py_INCREF(r->reason);
  if (src->reply.code) {
    smtpc_decoded *d = PyMem_Malloc(sizeof *d);
    size_t i;
    if (d == NULL) {
      r->reply = PyErr_NoMemory();
    } else {
      memset(d, 0, sizeof *d);
      d->code = src->reply.code;
      d->code_source = "text"; /* read off the wire */
      memcpy(d->status, src->reply.status, SMTPC_STATUS_SIZE);
      d->kind = smtpc_kind(src->reply.code, src->reply.status);
      d->cls = src->cls;
      d->nlines = src->reply.nlines < SMTPC_DECODE_MAX_LINES ? src->reply.nlines
                                                            : SMTPC_DECODE_MAX_LINES;
      for (i = 0; i < d->nlines; i++) d->lines[i] = src->reply.lines[i];
      r->reply = pysmtpc_reply_new(d);
      PyMem_Free(d);
    }
  } else {
    r->reply = Py_None;
    Py_INCREF(Py_None);
  }
  r->mx = str_or_none(src->mx, src->mx ? strlen(src->mx) : 0);
  r->mx_address = str_or_none(src->mx_addr, src->mx_addr ? strlen(src->mx_addr) : 0);
  r->catch_all = src->catch_all < 0 ? Py_None : PyBool_FromLong(src->catch_all);
  if (src->catch_all < 0) Py_INCREF(Py_None);
  r->tls = PyBool_FromLong(src->tls);
  r->greylisted = PyBool_FromLong(src->greylisted);
  r->error = src->error ? PyUnicode_FromString(smtpc_err_name(src->error)) : (Py_INCREF(Py_None), Py_None);
  r->detail = str_or_none(src->detail, src->detail ? strlen(src->detail) : 0);
  r->duration = PyFloat_FromDouble(src->duration);
  r->transcript = str_or_none(src->transcript, src->transcript_len);
  {
    PyObject *v[4] = {NULL, NULL, NULL, NULL};
    if (pysmtpc_inspection_values(&src->inspect, v) < 0) v[3] = NULL;
    r->disposable = v[0];
    r->role = v[1];
    r->free_provider = v[2];
    r->suggestion = v[3];
  }
  r->cached = PyBool_FromLong(src->cached);
  r->age = PyFloat_FromDouble(src->age);
  if (!r->address || !r->reply || !r->mx || !r->mx_address || !r->tls || !r->greylisted ||
      !r->error || !r->detail || !r->duration || !r->transcript ||
      !r->suggestion || !r->cached || !r->age) {
    Py_DECREF(r);
    return NULL;
  }
  return (PyObject *)r;
}

static void result_dealloc(ResultObject *r) {
#define XX(f, doc) Py_XDECREF(r->f);
  RESULT_FIELDS(XX)
#undef XX
  PyObject_Free(r);
}

static PyObject *result_to_dict(ResultObject *r, PyObject *unused) {
  PyObject *d = PyDict_New(), *v;
  int bad = 0;
  (void)unused;
  if (d == NULL) return NULL;
#define XX(f, doc)                                                                          \
  if (!bad) {                                                                               \
    v = (strcmp(#f, "reply") == 0 && r->f != Py_None) ? PyObject_CallMethod(r->f, "to_dict", NULL) \
                                                      : (Py_INCREF(r->f), r->f);            \
    bad = v == NULL || PyDict_SetItemString(d, #f, v) < 0;                                  \
    Py_XDECREF(v);                                                                          \
  }
  RESULT_FIELDS(XX)
#undef XX
  if (bad) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

static PyObject *result_repr(ResultObject *r) {
  return PyUnicode_FromFormat("Result(address=%R, verdict=%R, reason=%R, mx=%R)", r->address,
                              r->verdict, r->reason, r->mx);
}

static PyMemberDef result_members[] = {
#define XX(f, doc) {#f, T_OBJECT_EX, offsetof(ResultObject, f), READONLY, doc},
  RESULT_FIELDS(XX)
#undef XX
  {NULL, 0, 0, 0, NULL},
};

static PyMethodDef result_methods[] = {
  {"to_dict", (PyCFunction)result_to_dict, METH_NOARGS, "The fields as a plain dict (reply too)."},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject ResultType = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "smtpcode.Result",
  .tp_basicsize = sizeof(ResultObject),
  .tp_dealloc = (destructor)result_dealloc,
  .tp_repr = (reprfunc)result_repr,
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "One address's verification result (immutable).",
  .tp_methods = result_methods,
  .tp_members = result_members,
};

/* ---------------------------------------------------------------------------------------- */
/* The iterator.                                                                             */

typedef struct {
  PyObject_HEAD
  PyObject *input;          /* iterator over the addresses; NULL once exhausted */
  uv_loop_t *loop;
  uv_timer_t wake;          /* bounds each uv_run pass (see above); open while loop is */
  smtpc_verifier *v;
  qnode *head, *tail;       /* results waiting to be yielded */
  size_t window;            /* most addresses pending in the engine at once */
  uint64_t tag;
  int ended, closed, running, nomem;
} VerifyObject;

static PyTypeObject VerifyType;

static void on_result(smtpc_verifier *v, const smtpc_result *r, void *data) {
  VerifyObject *self = data;
  qnode *n = malloc(sizeof *n);
  (void)v;
  if (n == NULL || (n->r = smtpc_result_dup(r)) == NULL) {
    /* reported as MemoryError by __next__; the address is lost, so say so */
    free(n);
    self->nomem = 1;
    return;
  }
  n->next = NULL;
  if (self->tail) self->tail->next = n;
  else self->head = n;
  self->tail = n;
}

static void on_closed(smtpc_verifier *v) {
  VerifyObject *self = smtpc_verifier_data(v);
  self->closed = 1;
}

static void on_wake(uv_timer_t *t) { (void)t; /* only ends the pass: __next__ does the rest */ }

static void close_stray(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* Close the verifier and the loop (GIL released: closing may run callbacks for a while). */
static void shutdown_engine(VerifyObject *self) {
  qnode *n;
  if (self->v) {
    Py_BEGIN_ALLOW_THREADS
    smtpc_verifier_close(self->v, on_closed);
    while (!self->closed && uv_run(self->loop, UV_RUN_ONCE)) {
    }
    Py_END_ALLOW_THREADS
    self->v = NULL;
  }
  if (self->loop) {
    uv_close((uv_handle_t *)&self->wake, NULL);
    uv_run(self->loop, UV_RUN_NOWAIT); /* runs the close */
    if (uv_loop_close(self->loop) == UV_EBUSY) { /* defence: never free a loop with handles */
      uv_walk(self->loop, close_stray, NULL);
      uv_run(self->loop, UV_RUN_NOWAIT);
      if (uv_loop_close(self->loop) == 0) PyMem_RawFree(self->loop);
    } else {
      PyMem_RawFree(self->loop);
    }
    self->loop = NULL;
  }
  while ((n = self->head) != NULL) {
    self->head = n->next;
    smtpc_result_free(n->r);
    free(n);
  }
  self->tail = NULL;
}

/* Pull input until the window is full. Returns 0, or -1 with an exception set. */
static int refill(VerifyObject *self) {
  while (self->input && smtpc_verifier_pending(self->v) < self->window) {
    PyObject *o = PyIter_Next(self->input);
    const char *s;
    Py_ssize_t n;
    int rc;
    if (o == NULL) {
      if (PyErr_Occurred()) return -1;
      Py_CLEAR(self->input);
      break;
    }
    if (!PyUnicode_Check(o)) {
      PyErr_Format(PyExc_TypeError, "verify() addresses must be str, not %.80s",
                   Py_TYPE(o)->tp_name);
      Py_DECREF(o);
      return -1;
    }
    /* surrogatepass keeps lone surrogates as bytes: the parser calls them invalid UTF-8 */
    {
      PyObject *b = PyUnicode_AsEncodedString(o, "utf-8", "surrogatepass");
      Py_DECREF(o);
      if (b == NULL) return -1;
      s = PyBytes_AS_STRING(b);
      n = PyBytes_GET_SIZE(b);
      rc = smtpc_verifier_add(self->v, s, (size_t)n, self->tag++);
      Py_DECREF(b);
    }
    if (rc < 0) {
      if (rc == SMTPC_ENOMEM) PyErr_NoMemory();
      else PyErr_SetString(PyExc_RuntimeError, smtpc_strerror(rc));
      return -1;
    }
  }
  if (self->input == NULL && !self->ended) {
    smtpc_verifier_end(self->v);
    self->ended = 1;
  }
  return 0;
}

static PyObject *verify_next(VerifyObject *self) {
  PyObject *res = NULL;
  if (self->running) {
    PyErr_SetString(PyExc_ValueError, "verify iterator already executing");
    return NULL;
  }
  self->running = 1;
  for (;;) {
    qnode *n = self->head;
    int active;
    if (self->nomem) {
      self->nomem = 0;
      PyErr_SetString(PyExc_MemoryError, "out of memory while copying a result");
      break;
    }
    if (n) {
      self->head = n->next;
      if (self->head == NULL) self->tail = NULL;
      res = result_new(n->r);
      smtpc_result_free(n->r);
      free(n);
      break;
    }
    if (self->v == NULL) break; /* finished: StopIteration */
    if (smtpc_verifier_done(self->v)) {
      shutdown_engine(self);
      continue;
    }
    if (refill(self) < 0) break;
    if (self->head || smtpc_verifier_done(self->v)) continue;
    Py_BEGIN_ALLOW_THREADS
    active = uv_run(self->loop, UV_RUN_ONCE);
    Py_END_ALLOW_THREADS
    if (PyErr_CheckSignals() < 0) break; /* Ctrl-C: the exception goes up; dealloc cancels */
    if (!active && !self->head && !smtpc_verifier_done(self->v)) {
      PyErr_SetString(PyExc_RuntimeError, "verify: the engine stopped with addresses pending");
      break;
    }
  }
  self->running = 0;
  return res;
}

static int verify_traverse(VerifyObject *self, visitproc visit, void *arg) {
  Py_VISIT(self->input);
  return 0;
}

static int verify_clear(VerifyObject *self) {
  Py_CLEAR(self->input);
  return 0;
}

static void verify_dealloc(VerifyObject *self) {
  PyObject_GC_UnTrack(self);
  shutdown_engine(self);
  Py_CLEAR(self->input);
  PyObject_GC_Del(self);
}

static PyObject *verify_iter(PyObject *self) {
  Py_INCREF(self);
  return self;
}

static PyObject *verify_close(VerifyObject *self, PyObject *unused) {
  (void)unused;
  if (self->running) {
    PyErr_SetString(PyExc_ValueError, "verify iterator already executing");
    return NULL;
  }
  shutdown_engine(self);
  Py_CLEAR(self->input);
  Py_RETURN_NONE;
}

static PyObject *verify_enter(PyObject *self, PyObject *unused) {
  (void)unused;
  Py_INCREF(self);
  return self;
}

static PyObject *verify_exit(VerifyObject *self, PyObject *args) {
  (void)args;
  return verify_close(self, NULL);
}

static PyMethodDef verify_methods[] = {
  {"close", (PyCFunction)verify_close, METH_NOARGS,
   "Cancel pending addresses and release the engine (done automatically when dropped)."},
  {"__enter__", (PyCFunction)verify_enter, METH_NOARGS, NULL},
  {"__exit__", (PyCFunction)verify_exit, METH_VARARGS, NULL},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject VerifyType = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "smtpcode.VerifyIterator",
  .tp_basicsize = sizeof(VerifyObject),
  .tp_dealloc = (destructor)verify_dealloc,
  .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
  .tp_doc = "Iterator of smtpcode.Result, one per input address, in completion order.",
  .tp_traverse = (traverseproc)verify_traverse,
  .tp_clear = (inquiry)verify_clear,
  .tp_iter = verify_iter,
  .tp_iternext = (iternextfunc)verify_next,
  .tp_methods = verify_methods,
};

/* ---------------------------------------------------------------------------------------- */
/* verify(addresses, *, mail_from, helo, ...)                                                */

/* Envelope text from the caller: no controls, no angle brackets (they would end up on the
 * wire inside a command). */
static int check_wire_text(const char *what, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f || c == '<' || c == '>') {
      PyErr_Format(PyExc_ValueError, "verify(): %s must not contain control characters or <>",
                   what);
      return -1;
    }
  }
  return 0;
}

/* dns_servers / source_address: None, "a,b" or a sequence of such strings -> new bytes CSV. */
static PyObject *dns_csv(PyObject *o) {
  PyObject *comma, *joined, *b;
  if (o == Py_None) Py_RETURN_NONE;
  if (PyUnicode_Check(o)) return PyUnicode_AsUTF8String(o);
  if ((comma = PyUnicode_FromString(",")) == NULL) return NULL;
  joined = PyUnicode_Join(comma, o);
  Py_DECREF(comma);
  if (joined == NULL) {
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_Clear();
      PyErr_SetString(PyExc_TypeError,
                      "verify(): dns_servers and source_address must be None, a str or a list of str");
    }
    return NULL;
  }
  b = PyUnicode_AsUTF8String(joined);
  Py_DECREF(joined);
  return b;
}

/* The options both Python drivers take (verify() and smtpcode.aio's _Plan): names to values and
 * the range checks. Zeros would mean "the default" to the core; to Python callers they are
 * mistakes. Returns 0, or -1 with ValueError set (its text starts with `who`). */
int pysmtpc_verify_opts_check(smtpc_verify_opts *o, const char *starttls, const char *disposable,
                              const char *who) {
  if ((o->starttls = smtpc_starttls_from_name(starttls, strlen(starttls))) < 0) {
    PyErr_Format(PyExc_ValueError, "%s: starttls must be 'opportunistic', 'required' or 'off'",
                 who);
    return -1;
  }
  if ((o->disposable = smtpc_disposable_policy_from_name(disposable, strlen(disposable))) < 0) {
    PyErr_Format(PyExc_ValueError, "%s: disposable must be 'risky' or 'undeliverable'", who);
    return -1;
  }
  if (o->port < 1 || o->port > 65535 || o->concurrency < 1 || o->per_host < 1 ||
      o->rcpt_per_session < 1 || o->max_rejections < 1 || !(o->timeout > 0) ||
      !(o->deadline > 0) || !(o->connect_timeout > 0) || !(o->host_pause >= 0)) {
    PyErr_Format(PyExc_ValueError,
                 "%s: port must be 1-65535; concurrency, per_host, rcpt_per_session and "
                 "max_rejections at least 1; timeout, connect_timeout and deadline positive; "
                 "host_pause not negative", who);
    return -1;
  }
  return 0;
}

static PyObject *py_verify(PyObject *mod, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"addresses", "mail_from", "helo", "port", "dns_servers", "concurrency",
                           "per_host", "rcpt_per_session", "starttls", "tls_verify", "catch_all",
                           "greylist_delay", "deadline", "timeout", "transcript",
                           "connect_timeout", "max_rejections", "host_pause", "disposable",
                           "proxy", "source_address", "cache", "cache_positive_ttl",
                           "cache_negative_ttl", "cache_unknown_ttl", "refresh", NULL};
  PyObject *addresses, *dns = Py_None, *dnsb = NULL, *src = Py_None, *srcb = NULL;
  PyObject *cache = Py_None, *cacheb = NULL;
  int refresh = 0;
  const char *mail_from = NULL, *helo = NULL, *starttls = "opportunistic", *disposable = "risky";
  int tls_verify = 0, catch_all = 1, transcript = 0;
  smtpc_verify_opts o;
  VerifyObject *self;
  int err = 0;
  (void)mod;
  smtpc_verify_opts_init(&o);
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$zziOiiisppdddpdidszOOdddp:verify", kwlist,
                                   &addresses, &mail_from, &helo, &o.port, &dns, &o.concurrency,
                                   &o.per_host, &o.rcpt_per_session, &starttls, &tls_verify,
                                   &catch_all, &o.greylist_delay, &o.deadline, &o.timeout,
                                   &transcript, &o.connect_timeout, &o.max_rejections,
                                   &o.host_pause, &disposable, &o.proxy, &src, &cache,
                                   &o.cache_positive_ttl, &o.cache_negative_ttl,
                                   &o.cache_unknown_ttl, &refresh))
    return NULL;
  if (PyUnicode_Check(addresses) || PyBytes_Check(addresses)) { /* a classic slip */
    PyErr_SetString(PyExc_TypeError, "verify() takes an iterable of addresses, not one string");
    return NULL;
  }
  if (mail_from == NULL || helo == NULL) {
    PyErr_Format(PyExc_TypeError, "verify() missing required keyword argument '%s'",
                 mail_from == NULL ? "mail_from" : "helo");
    return NULL;
  }
  if (check_wire_text("mail_from", mail_from) < 0 || check_wire_text("helo", helo) < 0)
    return NULL;
  if (pysmtpc_verify_opts_check(&o, starttls, disposable, "verify()") < 0) return NULL;
  o.mail_from = mail_from;
  o.helo = helo;
  o.tls_verify = tls_verify;
  o.catch_all = catch_all;
  o.transcript = transcript;
  if (!(o.cache_positive_ttl >= 0) || !(o.cache_negative_ttl >= 0) || !(o.cache_unknown_ttl >= 0)) {
    PyErr_SetString(PyExc_ValueError, "verify(): cache lifetimes must not be negative");
    return NULL;
  }
  if (o.proxy && smtpc_proxy_parse(o.proxy, strlen(o.proxy), &(smtpc_proxy){0}) != 0) {
    PyErr_SetString(PyExc_ValueError,
                    "verify(): proxy must be socks5://[user:pass@]host[:port] or socks5h://...");
    return NULL;
  }
  o.cache_refresh = refresh;
  if (cache != Py_None && !PyUnicode_FSConverter(cache, &cacheb)) return NULL;
  o.cache = cacheb ? PyBytes_AS_STRING(cacheb) : NULL;
  if ((srcb = dns_csv(src)) == NULL) {
    Py_XDECREF(cacheb);
    return NULL;
  }
  o.bind_address = srcb == Py_None ? NULL : PyBytes_AS_STRING(srcb);
  if ((dnsb = dns_csv(dns)) == NULL) {
    Py_XDECREF(cacheb);
    Py_DECREF(srcb);
    return NULL;
  }
  o.dns_servers = dnsb == Py_None ? NULL : PyBytes_AS_STRING(dnsb);

  if ((self = PyObject_GC_New(VerifyObject, &VerifyType)) == NULL) {
    Py_DECREF(dnsb);
    Py_DECREF(srcb);
    Py_XDECREF(cacheb);
    return NULL;
  }
  self->input = NULL;
  self->loop = NULL;
  self->v = NULL;
  self->head = self->tail = NULL;
  self->tag = 0;
  self->ended = self->closed = self->running = self->nomem = 0;
  /* Enough to keep every session busy with a full batch, twice over; bounded whatever the
   * input's size. */
  self->window = (size_t)o.concurrency * (size_t)o.rcpt_per_session * 2;
  if (self->window < 256) self->window = 256;
  if (self->window > 65536) self->window = 65536;
  PyObject_GC_Track(self);

  if ((self->input = PyObject_GetIter(addresses)) == NULL) goto fail;
  if ((self->loop = PyMem_RawMalloc(sizeof *self->loop)) == NULL) {
    PyErr_NoMemory();
    goto fail;
  }
  if (uv_loop_init(self->loop) != 0) {
    PyMem_RawFree(self->loop);
    self->loop = NULL;
    PyErr_SetString(PyExc_OSError, "verify(): cannot create an event loop");
    goto fail;
  }
  uv_timer_init(self->loop, &self->wake);
  uv_timer_start(&self->wake, on_wake, WAKE_MS, WAKE_MS);
  uv_unref((uv_handle_t *)&self->wake);
  self->v = smtpc_verifier_new(self->loop, &o, on_result, self, &err);
  if (self->v == NULL) {
    if (err == SMTPC_ENOMEM) PyErr_NoMemory();
    else if (err == SMTPC_ECACHE) /* a file the user named: an OSError saying which and why */
      PyErr_Format(PyExc_OSError, "verify(): cache %s: %s", o.cache, smtpc_strerror(err));
    else if (err == SMTPC_EINVAL && o.bind_address)
      PyErr_Format(PyExc_ValueError, "verify(): %s (source_address must be IP addresses)",
                   smtpc_strerror(err));
    else PyErr_Format(PyExc_ValueError, "verify(): %s", smtpc_strerror(err));
    goto fail;
  }
  Py_DECREF(dnsb);
  Py_DECREF(srcb);
  Py_XDECREF(cacheb);
  return (PyObject *)self;
fail:
  Py_DECREF(dnsb);
  Py_DECREF(srcb);
  Py_XDECREF(cacheb);
  Py_DECREF(self);
  return NULL;
}

static PyMethodDef verify_functions[] = {
  {"verify", (PyCFunction)(void (*)(void))py_verify, METH_VARARGS | METH_KEYWORDS,
   "verify(addresses, *, mail_from, helo, port=25, dns_servers=None, concurrency=100,\n"
   "       per_host=2, rcpt_per_session=50, starttls='opportunistic', tls_verify=False,\n"
   "       catch_all=True, greylist_delay=60.0, deadline=300.0, timeout=30.0,\n"
   "       transcript=False, connect_timeout=10.0, max_rejections=8, host_pause=0.1,\n"
   "       disposable='risky', proxy=None, source_address=None, cache=None,\n"
   "       cache_positive_ttl=2678400.0, cache_negative_ttl=259200.0, cache_unknown_ttl=0.0,\n"
   "       refresh=False)\n"
   "--\n\n"
   "Check addresses by SMTP without sending mail. Returns an iterator of Result, one per\n"
   "input address, each yielded as soon as it is known. `addresses` may be any iterable of\n"
   "str; it is read lazily, keeping a bounded window of pending work. A disposable address\n"
   "that would be deliverable is 'risky' (disposable='undeliverable': always undeliverable)."},
  {NULL, NULL, 0, NULL},
};

int pysmtpc_init_verify(PyObject *module) {
  int i;
  for (i = 0; i < SMTPC_VERDICT_COUNT; i++)
    if ((verdict_str[i] = PyUnicode_InternFromString(smtpc_verdict_name(i))) == NULL) return -1;
  for (i = 0; i < SMTPC_REASON_COUNT; i++)
    if ((reason_str[i] = PyUnicode_InternFromString(smtpc_reason_name(i))) == NULL) return -1;
  if (PyType_Ready(&ResultType) < 0 || PyType_Ready(&VerifyType) < 0) return -1;
  Py_INCREF(&ResultType);
  if (PyModule_AddObject(module, "Result", (PyObject *)&ResultType) < 0) {
    Py_DECREF(&ResultType);
    return -1;
  }
  Py_INCREF(&VerifyType);
  if (PyModule_AddObject(module, "VerifyIterator", (PyObject *)&VerifyType) < 0) {
    Py_DECREF(&VerifyType);
    return -1;
  }
  return PyModule_AddFunctions(module, verify_functions);
}

PyObject *pysmtpc_result_new(const smtpc_result *r) { return result_new(r); }
