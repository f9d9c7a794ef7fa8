/* _inspect.c -- Python binding for csrc/inspect.c.
 *
 *   smtpcode.inspect(address: str | bytes, *, mx: bool | None = None) -> Inspection
 *       Inspection(disposable, role, free_provider, suggestion) -- a named tuple (structseq);
 *       mx: what DNS says of the domain (True: it has a mail route, so it is never corrected;
 *       False: none or NXDOMAIN; None: not looked up, a suggestion is a candidate).
 *       An invalid address raises AddressError, as parse_address does.
 * The same four fields are on Address (parse_address) and on verify()'s Result objects; this
 * file converts them for both. */
#include "_smtpcode.h" /* Python.h first, as the C API asks */

static PyTypeObject *InspectionType = NULL;

static PyStructSequence_Field inspection_fields[] = {
  {"disposable", "True when the domain (or one above it) is a throw-away mail service"},
  {"role", "True when the local part names a role (info, postmaster, sales ...)"},
  {"free_provider", "True when the domain is a free mailbox provider (gmail.com, docomo.ne.jp)"},
  {"suggestion", "the address with its mistyped domain corrected, or None"},
  {NULL, NULL},
};

static PyStructSequence_Desc inspection_desc = {
  "smtpcode.Inspection",
  "What an address tells besides SMTP: (disposable, role, free_provider, suggestion).",
  inspection_fields, 4,
};

int pysmtpc_inspection_values(const smtpc_inspection *x, PyObject *out[4]) {
  out[0] = PyBool_FromLong(x->disposable);
  out[1] = PyBool_FromLong(x->role);
  out[2] = PyBool_FromLong(x->free_provider);
  if (x->suggestion[0] == '\0') {
    Py_INCREF(Py_None);
    out[3] = Py_None;
  } else if ((out[3] = PyUnicode_FromString(x->suggestion)) == NULL) {
    Py_DECREF(out[0]);
    Py_DECREF(out[1]);
    Py_DECREF(out[2]);
    return -1;
  }
  return 0;
}

static PyObject *py_inspect(PyObject *module, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"address", "mx", NULL};
  PyObject *arg, *mx = Py_None, *res, *vals[4];
  Py_buffer view = {0};
  const char *s;
  Py_ssize_t n;
  int route, rc, i;
  smtpc_inspection x;
  (void)module;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$O:inspect", kwlist, &arg, &mx)) return NULL;
  if (mx == Py_None) {
    route = SMTPC_ROUTE_UNKNOWN;
  } else if ((rc = PyObject_IsTrue(mx)) < 0) {
    return NULL;
  } else {
    route = rc ? SMTPC_ROUTE_OK : SMTPC_ROUTE_NONE;
  }
  if (PyUnicode_Check(arg)) {
    if ((s = PyUnicode_AsUTF8AndSize(arg, &n)) == NULL) {
      PyErr_Clear(); /* lone surrogates: parse_address raises the right AddressError */
      rc = SMTPC_EBADADDRESS;
    } else {
      rc = smtpc_inspect(s, (size_t)n, route, &x);
    }
  } else if (PyObject_CheckBuffer(arg) && PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) == 0) {
    rc = smtpc_inspect(view.buf, (size_t)view.len, route, &x);
    PyBuffer_Release(&view);
  } else {
    if (!PyErr_Occurred())
      PyErr_Format(PyExc_TypeError, "expected str or bytes, not %.100s", Py_TYPE(arg)->tp_name);
    return NULL;
  }
  if (rc == SMTPC_EBADADDRESS) {
    /* the parser's own error, with .kind and .offset */
    PyObject *ok = pysmtpc_parse_address(arg);
    if (ok != NULL) {
      Py_DECREF(ok);
      PyErr_SetString(PyExc_ValueError, smtpc_strerror(rc));
    }
    return NULL;
  }
  if (rc < 0) {
    PyErr_SetString(rc == SMTPC_ENOMEM ? PyExc_MemoryError : PyExc_ValueError, smtpc_strerror(rc));
    return NULL;
  }
  if ((res = PyStructSequence_New(InspectionType)) == NULL) return NULL;
  if (pysmtpc_inspection_values(&x, vals) < 0) {
    Py_DECREF(res);
    return NULL;
  }
  for (i = 0; i < 4; i++) PyStructSequence_SET_ITEM(res, i, vals[i]);
  return res;
}

static PyObject *py_inspect_tables(PyObject *module, PyObject *unused) {
  (void)module;
  (void)unused;
  return Py_BuildValue("{s:n,s:n,s:n,s:n}", "disposable", (Py_ssize_t)smtpc_inspect_table_size(0),
                       "free_provider", (Py_ssize_t)smtpc_inspect_table_size(1), "role",
                       (Py_ssize_t)smtpc_inspect_table_size(2), "typo_targets",
                       (Py_ssize_t)smtpc_inspect_table_size(3));
}

static PyMethodDef inspect_functions[] = {
  {"inspect", (PyCFunction)(void (*)(void))py_inspect, METH_VARARGS | METH_KEYWORDS,
   "inspect(address: str | bytes, *, mx: bool | None = None) -> Inspection\n--\n\n"
   "Disposable domain, role local part, free mailbox provider and a typo suggestion for an "
   "address, without network. mx: True when the domain is known to have a mail route (it is "
   "then never corrected), False when it has none, None when not looked up (a suggestion is "
   "then a candidate). Raises AddressError for an invalid address."},
  {"inspect_tables", py_inspect_tables, METH_NOARGS,
   "inspect_tables() -> dict\n--\n\nEntries in each look-up table (disposable, free_provider, "
   "role, typo_targets)."},
  {NULL, NULL, 0, NULL},
};

int pysmtpc_init_inspect(PyObject *module) {
  InspectionType = PyStructSequence_NewType(&inspection_desc);
  if (InspectionType == NULL) return -1;
  Py_INCREF(InspectionType);
  if (PyModule_AddObject(module, "Inspection", (PyObject *)InspectionType) < 0) {
    Py_DECREF(InspectionType);
    return -1;
  }
  return PyModule_AddFunctions(module, inspect_functions);
}
