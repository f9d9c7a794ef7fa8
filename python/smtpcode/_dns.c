/* _dns.c -- smtpcode.resolve(domain, *, dns_servers=None, timeout=5.0, tries=None,
 * family="prefer_ipv4") -> Route, with the GIL released while the C resolver runs its own
 * private uv loop. Route and MX are struct sequences (attribute access, immutable):
 *   Route(domain, mx: list[MX], implicit, null_mx, error: None | "nxdomain" | "servfail" |
 *         "refused" | "timeout" | "no-address", ttl)
 *   MX(preference, host, addresses: list[str])
 * A domain that is not a host name and bad options raise ValueError. */
#include "_smtpcode.h"

#include <arpa/inet.h>
#include <string.h>

#include "dns_internal.h"

#define SERVERS_MAX 1024

static PyTypeObject *RouteType, *MXType;

static PyStructSequence_Field route_fields[] = {
  {"domain", "the domain asked for: lower case, no trailing dot"},
  {"mx", "list of MX, by preference (equal preferences in random order)"},
  {"implicit", "True when there is no MX: the one entry is the domain itself"},
  {"null_mx", "True for a null MX (RFC 7505): the domain takes no mail"},
  {"error", "None, or 'nxdomain' 'servfail' 'refused' 'timeout' 'no-address'"},
  {"ttl", "seconds the answer may be kept"},
  {NULL, NULL},
};
static PyStructSequence_Desc route_desc = {"smtpcode.Route", "Where mail for a domain goes.",
                                           route_fields, 6};

static PyStructSequence_Field mx_fields[] = {
  {"preference", "MX preference (0 for the implicit MX)"},
  {"host", "host name, lower case, no trailing dot"},
  {"addresses", "list of IPv4/IPv6 address strings, preferred family first"},
  {NULL, NULL},
};
static PyStructSequence_Desc mx_desc = {"smtpcode.MX", "One mail exchanger.", mx_fields, 3};

/* dns_servers: None, one "host:port" string, or an iterable of them -> "a,b" for c-ares. */
static int read_servers(PyObject *obj, char *buf) {
  PyObject *it, *item;
  size_t len = 0;
  buf[0] = '\0';
  if (obj == Py_None) return 0;
  if (PyUnicode_Check(obj)) {
    obj = Py_BuildValue("(O)", obj);
    if (obj == NULL) return -1;
  } else {
    Py_INCREF(obj);
  }
  it = PyObject_GetIter(obj);
  Py_DECREF(obj);
  if (it == NULL) {
    PyErr_SetString(PyExc_TypeError, "dns_servers must be a string or a list of strings");
    return -1;
  }
  while ((item = PyIter_Next(it)) != NULL) {
    Py_ssize_t n;
    const char *s = PyUnicode_Check(item) ? PyUnicode_AsUTF8AndSize(item, &n) : NULL;
    if (s == NULL || n == 0 || n > 64 || strcspn(s, ", \t\r\n") != (size_t)n ||
        len + (size_t)n + 2 > SERVERS_MAX) {
      Py_DECREF(item);
      Py_DECREF(it);
      PyErr_Clear();
      PyErr_SetString(PyExc_ValueError, "bad dns_servers entry (\"127.0.0.1:5353\" or \"[::1]:53\")");
      return -1;
    }
    if (len) buf[len++] = ',';
    memcpy(buf + len, s, (size_t)n);
    len += (size_t)n;
    buf[len] = '\0';
    Py_DECREF(item);
  }
  Py_DECREF(it);
  if (PyErr_Occurred()) return -1;
  if (len == 0) {
    PyErr_SetString(PyExc_ValueError, "dns_servers is empty");
    return -1;
  }
  return 0;
}

static PyObject *mx_new(const smtpc_mx *mx) {
  PyObject *o = PyStructSequence_New(MXType), *addrs;
  size_t k;
  if (o == NULL) return NULL;
  PyStructSequence_SET_ITEM(o, 0, PyLong_FromLong(mx->preference));
  PyStructSequence_SET_ITEM(o, 1, PyUnicode_FromString(mx->host));
  PyStructSequence_SET_ITEM(o, 2, addrs = PyList_New((Py_ssize_t)mx->naddrs));
  if (!PyStructSequence_GET_ITEM(o, 0) || !PyStructSequence_GET_ITEM(o, 1) || addrs == NULL) {
    Py_DECREF(o);
    return NULL;
  }
  for (k = 0; k < mx->naddrs; k++) {
    char buf[INET6_ADDRSTRLEN];
    const smtpc_sockaddr *a = &mx->addrs[k];
    const void *bin = a->sa.sa_family == AF_INET6 ? (const void *)&a->in6.sin6_addr
                                                  : (const void *)&a->in.sin_addr;
    PyObject *s = PyUnicode_FromString(inet_ntop(a->sa.sa_family, bin, buf, sizeof(buf)) ? buf : "?");
    if (s == NULL) {
      Py_DECREF(o);
      return NULL;
    }
    PyList_SET_ITEM(addrs, (Py_ssize_t)k, s);
  }
  return o;
}

PyObject *pysmtpc_route_new(const smtpc_route *r) {
  PyObject *o = PyStructSequence_New(RouteType), *list, *err;
  size_t i;
  if (o == NULL) return NULL;
  if (r->error) {
    err = PyUnicode_FromString(smtpc_dns_error_name(r->error));
  } else {
    Py_INCREF(Py_None);
    err = Py_None;
  }
  PyStructSequence_SET_ITEM(o, 0, PyUnicode_FromString(r->domain));
  PyStructSequence_SET_ITEM(o, 1, list = PyList_New((Py_ssize_t)r->nmx));
  PyStructSequence_SET_ITEM(o, 2, PyBool_FromLong(r->implicit));
  PyStructSequence_SET_ITEM(o, 3, PyBool_FromLong(r->null_mx));
  PyStructSequence_SET_ITEM(o, 4, err);
  PyStructSequence_SET_ITEM(o, 5, PyLong_FromUnsignedLong(r->ttl));
  for (i = 0; i < 6; i++) {
    if (PyStructSequence_GET_ITEM(o, (Py_ssize_t)i) == NULL) {
      Py_DECREF(o);
      return NULL;
    }
  }
  for (i = 0; i < r->nmx; i++) {
    PyObject *mx = mx_new(&r->mx[i]);
    if (mx == NULL) {
      Py_DECREF(o);
      return NULL;
    }
    PyList_SET_ITEM(list, (Py_ssize_t)i, mx);
  }
  return o;
}

static PyObject *py_resolve(PyObject *self, PyObject *args, PyObject *kwargs) {
  static char *kwlist[] = {"domain", "dns_servers", "timeout", "tries", "family", NULL};
  const char *domain, *family = NULL;
  PyObject *servers_obj = Py_None, *tries_obj = Py_None, *res;
  double timeout = 5.0;
  char servers[SERVERS_MAX + 1];
  smtpc_resolver_opts o;
  smtpc_route *route = NULL;
  int rc;
  (void)self;

  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|$OdOz:resolve", kwlist, &domain, &servers_obj,
                                   &timeout, &tries_obj, &family))
    return NULL;
  memset(&o, 0, sizeof(o));
  if (read_servers(servers_obj, servers) < 0) return NULL;
  o.servers = servers[0] ? servers : NULL;
  if (!(timeout > 0 && timeout <= 3600)) {
    PyErr_SetString(PyExc_ValueError, "timeout must be 0 < s <= 3600");
    return NULL;
  }
  o.timeout_ms = timeout * 1000 < 1 ? 1 : (int)(timeout * 1000);
  if (tries_obj != Py_None) {
    long t = PyLong_Check(tries_obj) ? PyLong_AsLong(tries_obj) : 0;
    if (t < 1 || t > 10) {
      PyErr_Clear();
      PyErr_SetString(PyExc_ValueError, "tries must be 1..10");
      return NULL;
    }
    o.tries = (int)t;
  }
  if (family != NULL) {
    if ((o.family = smtpc__dns_family_of(family)) < 0) {
      PyErr_SetString(PyExc_ValueError, SMTPC__DNS_FAMILY_ERR);
      return NULL;
    }
  }

  Py_BEGIN_ALLOW_THREADS
  rc = smtpc_resolve_blocking(domain, &o, &route);
  Py_END_ALLOW_THREADS

  if (rc == SMTPC_EINVAL) {
    PyObject *d = PyUnicode_FromString(domain);
    if (d != NULL) {
      PyErr_Format(PyExc_ValueError, "invalid domain name %R%s", d,
                   o.servers ? " or dns_servers" : "");
      Py_DECREF(d);
    }
    return NULL;
  }
  if (rc == SMTPC_ENOMEM) return PyErr_NoMemory();
  if (rc < 0) {
    PyErr_SetString(PyExc_OSError, smtpc_strerror(rc));
    return NULL;
  }
  res = pysmtpc_route_new(route);
  smtpc_route_free(route);
  return res;
}

static PyMethodDef dns_methods[] = {
  {"resolve", (PyCFunction)(void (*)(void))py_resolve, METH_VARARGS | METH_KEYWORDS,
   "resolve(domain, *, dns_servers=None, timeout=5.0, tries=None, family='prefer_ipv4') -> Route\n\n"
   "The MX route of a domain (blocking; the GIL is released). The domain is ASCII: convert an\n"
   "IDN first (parse_address(...).ascii_domain). dns_servers: 'host:port' strings; None uses\n"
   "the system's resolver configuration. A DNS failure is Route.error, not an exception."},
  {NULL, NULL, 0, NULL},
};

int pysmtpc_init_dns(PyObject *module) {
  if (RouteType == NULL && (RouteType = PyStructSequence_NewType(&route_desc)) == NULL) return -1;
  if (MXType == NULL && (MXType = PyStructSequence_NewType(&mx_desc)) == NULL) return -1;
  Py_INCREF(RouteType);
  if (PyModule_AddObject(module, "Route", (PyObject *)RouteType) < 0) {
    Py_DECREF(RouteType);
    return -1;
  }
  Py_INCREF(MXType);
  if (PyModule_AddObject(module, "MX", (PyObject *)MXType) < 0) {
    Py_DECREF(MXType);
    return -1;
  }
  return PyModule_AddFunctions(module, dns_methods);
}
