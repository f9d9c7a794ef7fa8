/* _address.c -- Python binding for the address parser (csrc/address.c).
 *
 *   smtpcode.parse_address(s: str | bytes) -> Address      (Address(s) is the same)
 *   smtpcode.AddressError(ValueError): .kind ("consecutive_dots" ...), .offset (octet in the
 *                                      UTF-8 input, or None)
 * Address is immutable: its attributes are read-only, it compares and hashes by its normalised
 * text, and repr() gives Address('...') which evaluates back to an equal object. */
#include "_smtpcode.h" /* Python.h first, as the C API asks */

#include <string.h>
#include <structmember.h>

static PyObject *AddressError = NULL;

typedef struct {
  PyObject_HEAD
  PyObject *address, *ascii_address, *local_part, *domain, *ascii_domain;
  PyObject *literal, *smtputf8, *utf8_local;
  PyObject *disposable, *role, *free_provider, *suggestion;
} AddressObject;

#define ADDRESS_FIELDS(XX)                                                                    \
  XX(address, "normalised address: local_part '@' domain")                                   \
  XX(ascii_address, "local_part '@' ascii_domain: the form to send (needs SMTPUTF8 only when "  \
                    "utf8_local)")                                                             \
  XX(local_part, "local part, case kept; quoted only when a dot-string cannot say it")       \
  XX(domain, "domain, lower-cased, U-labels kept; a literal in canonical form")             \
  XX(ascii_domain, "domain with A-labels (xn--...)")                                         \
  XX(literal, "True when the domain is an address literal ([192.0.2.1], [IPv6:...])")        \
  XX(smtputf8, "True when the normalised address has non-ASCII characters (RFC 6531)")       \
  XX(utf8_local, "True when the local part has non-ASCII characters: RCPT needs SMTPUTF8") \
  XX(disposable, "True when the domain (or one above it) is a throw-away mail service")      \
  XX(role, "True when the local part names a role (info, postmaster, sales ...)")           \
  XX(free_provider, "True when the domain is a free mailbox provider")                      \
  XX(suggestion, "the address with a mistyped domain corrected (a candidate: no DNS was "    \
                 "asked), or None")

static PyMemberDef address_members[] = {
#define XX(name, doc) {#name, T_OBJECT_EX, offsetof(AddressObject, name), READONLY, doc},
  ADDRESS_FIELDS(XX)
#undef XX
  {NULL, 0, 0, 0, NULL},
};

static PyTypeObject AddressType;

static void address_dealloc(AddressObject *self) {
#define XX(name, doc) Py_XDECREF(self->name);
  ADDRESS_FIELDS(XX)
#undef XX
  Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Raise AddressError(message) with .kind and .offset set. */
static void raise_address_error(int kind, PyObject *offset) {
  PyObject *exc, *name;
  if (offset == NULL) return;
  exc = PyUnicode_FromFormat("%s (at offset %S)", smtpc_address_kind_message(kind), offset);
  if (exc != NULL) Py_SETREF(exc, PyObject_CallFunctionObjArgs(AddressError, exc, NULL));
  name = PyUnicode_FromString(smtpc_address_kind_name(kind));
  if (exc != NULL && name != NULL && PyObject_SetAttrString(exc, "kind", name) == 0 &&
      PyObject_SetAttrString(exc, "offset", offset) == 0) {
    PyErr_SetObject(AddressError, exc);
  }
  Py_XDECREF(exc);
  Py_XDECREF(name);
  Py_DECREF(offset);
}

/* The UTF-8 octets of a str or bytes-like argument. A str that cannot be encoded (lone
 * surrogates) is an invalid_utf8 address, not a TypeError: the caller did pass text. */
static AddressObject *address_from(PyObject *arg) {
  const char *s;
  Py_ssize_t n;
  Py_buffer view = {0};
  smtpc_address a;
  int kind = SMTPC_ADDR_OK, rc;
  AddressObject *self;

  if (PyUnicode_Check(arg)) {
    s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (s == NULL) {
      PyObject *head, *bytes = NULL;
      Py_ssize_t i, len = PyUnicode_GET_LENGTH(arg);
      if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return NULL;
      PyErr_Clear();
      /* the offset in octets, as for bytes: the encoded length of what precedes the first
       * lone surrogate */
      for (i = 0; i < len; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(arg, i);
        if (c >= 0xD800 && c <= 0xDFFF) break;
      }
      head = PyUnicode_Substring(arg, 0, i);
      if (head != NULL) bytes = PyUnicode_AsUTF8String(head);
      Py_XDECREF(head);
      raise_address_error(SMTPC_ADDR_EINVALID_UTF8,
                          bytes ? PyLong_FromSsize_t(PyBytes_GET_SIZE(bytes)) : NULL);
      Py_XDECREF(bytes);
      return NULL;
    }
    rc = smtpc_parse_address(s, (size_t)n, &a, &kind);
  } else if (PyObject_CheckBuffer(arg) && PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) == 0) {
    rc = smtpc_parse_address(view.buf, (size_t)view.len, &a, &kind);
    PyBuffer_Release(&view);
  } else {
    if (!PyErr_Occurred())
      PyErr_Format(PyExc_TypeError, "expected str or bytes, not %.100s", Py_TYPE(arg)->tp_name);
    return NULL;
  }
  if (rc == SMTPC_EBADADDRESS) {
    raise_address_error(kind, PyLong_FromSize_t(a.error_offset));
    return NULL;
  }
  if (rc < 0) {
    PyErr_SetString(rc == SMTPC_ENOMEM ? PyExc_MemoryError : PyExc_ValueError, smtpc_strerror(rc));
    return NULL;
  }

  self = PyObject_New(AddressObject, &AddressType);
  if (self == NULL) return NULL;
  /* the parser's output is valid UTF-8 by construction; strict decoding would say otherwise */
  self->address = PyUnicode_FromString(a.address);
  self->ascii_address = PyUnicode_FromString(a.ascii_address);
  self->local_part = PyUnicode_FromString(a.local_part);
  self->domain = PyUnicode_FromString(a.domain);
  self->ascii_domain = PyUnicode_FromString(a.ascii_domain);
  self->literal = PyBool_FromLong(a.literal);
  self->smtputf8 = PyBool_FromLong(a.smtputf8);
  self->utf8_local = PyBool_FromLong(a.utf8_local);
  {
    smtpc_inspection x;
    PyObject *v[4];
    smtpc_inspect_address(&a, SMTPC_ROUTE_UNKNOWN, &x);
    if (pysmtpc_inspection_values(&x, v) < 0) {
      v[0] = v[1] = v[2] = v[3] = NULL;
    }
    self->disposable = v[0];
    self->role = v[1];
    self->free_provider = v[2];
    self->suggestion = v[3];
  }
  if (!self->address || !self->ascii_address || !self->local_part || !self->domain ||
      !self->ascii_domain || !self->suggestion) {
    Py_DECREF(self);
    return NULL;
  }
  return self;
}

static PyObject *address_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
  static char *kwlist[] = {"address", NULL};
  PyObject *arg;
  (void)type;
  if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Address", kwlist, &arg)) return NULL;
  return (PyObject *)address_from(arg);
}

static PyObject *address_repr(AddressObject *self) {
  return PyUnicode_FromFormat("Address(%R)", self->address);
}

static PyObject *address_str(AddressObject *self) {
  Py_INCREF(self->address);
  return self->address;
}

static Py_hash_t address_hash(AddressObject *self) { return PyObject_Hash(self->address); }

static PyObject *address_richcompare(PyObject *a, PyObject *b, int op) {
  if (!PyObject_TypeCheck(b, &AddressType) || (op != Py_EQ && op != Py_NE))
    Py_RETURN_NOTIMPLEMENTED;
  return PyObject_RichCompare(((AddressObject *)a)->address, ((AddressObject *)b)->address, op);
}

/* Pickle as Address(text): the normalised text parses back to an equal object. */
static PyObject *address_reduce(AddressObject *self, PyObject *unused) {
  (void)unused;
  return Py_BuildValue("(O(O))", (PyObject *)Py_TYPE(self), self->address);
}

static PyMethodDef address_methods[] = {
  {"__reduce__", (PyCFunction)address_reduce, METH_NOARGS, NULL},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject AddressType = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "smtpcode.Address",
  .tp_basicsize = sizeof(AddressObject),
  .tp_dealloc = (destructor)address_dealloc,
  .tp_repr = (reprfunc)address_repr,
  .tp_str = (reprfunc)address_str,
  .tp_hash = (hashfunc)address_hash,
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "Address(address: str | bytes)\n--\n\n"
            "A parsed RFC 5321 mailbox (immutable); the same as parse_address(address).",
  .tp_richcompare = address_richcompare,
  .tp_members = address_members,
  .tp_methods = address_methods,
  .tp_new = address_new,
};

PyObject *pysmtpc_parse_address(PyObject *arg) { return (PyObject *)address_from(arg); }

static PyObject *py_parse_address(PyObject *module, PyObject *arg) {
  (void)module;
  return (PyObject *)address_from(arg);
}

static PyMethodDef address_functions[] = {
  {"parse_address", py_parse_address, METH_O,
   "parse_address(address: str | bytes) -> Address\n--\n\n"
   "Parse an RFC 5321 mailbox (RFC 6531 UTF-8 and IDNA2008 domains allowed). Raises "
   "AddressError (a ValueError) with .kind and .offset when it is not a valid mailbox."},
  {NULL, NULL, 0, NULL},
};

int pysmtpc_init_address(PyObject *module) {
  if (PyType_Ready(&AddressType) < 0) return -1;
  AddressError = PyErr_NewExceptionWithDoc(
      "smtpcode.AddressError",
      "An invalid mail address. .kind names the problem ('consecutive_dots', 'control_char' "
      "...), .offset is the octet of the UTF-8 input where it was found.",
      PyExc_ValueError, NULL);
  if (AddressError == NULL) return -1;
  if (PyObject_SetAttrString(AddressError, "kind", Py_None) < 0 ||
      PyObject_SetAttrString(AddressError, "offset", Py_None) < 0)
    return -1;
  Py_INCREF(AddressError); /* one reference kept here, one given to the module */
  if (PyModule_AddObject(module, "AddressError", AddressError) < 0) {
    Py_DECREF(AddressError);
    return -1;
  }
  Py_INCREF(&AddressType);
  if (PyModule_AddObject(module, "Address", (PyObject *)&AddressType) < 0) {
    Py_DECREF(&AddressType);
    return -1;
  }
  return PyModule_AddFunctions(module, address_functions);
}
