/* _smtpcode.h -- internal to the Python extension: hooks by which each module file adds its types
 * and functions to the module, and the shared constructors. */
#ifndef PYSMTPCODE_H
#define PYSMTPCODE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "smtpcode.h"

/* Each returns 0, or -1 with a Python exception set. */
int pysmtpc_init_address(PyObject *module);
int pysmtpc_init_dns(PyObject *module);
int pysmtpc_init_verify(PyObject *module);
int pysmtpc_init_plan(PyObject *module);
/* A smtpcode.Result from a result (new reference, NULL with an exception set). */
PyObject *pysmtpc_result_new(const smtpc_result *r);
/* _verify.c: option names to values and range checks, shared by verify() and _Plan. */
int pysmtpc_verify_opts_check(smtpc_verify_opts *o, const char *starttls, const char *disposable,
                              const char *who);
int pysmtpc_init_bounce(PyObject *module);
int pysmtpc_init_inspect(PyObject *module);
/* _mxq.c: the DNS route machine for drivers that carry the messages (smtpcode.aio). */
int pysmtpc_init_mxq(PyObject *module);
/* _dns.c: a smtpcode.Route from a route (new reference, NULL with an exception set). */
PyObject *pysmtpc_route_new(const smtpc_route *r);

/* smtpcode.parse_address(arg) (new reference; NULL with AddressError set). */
PyObject *pysmtpc_parse_address(PyObject *arg);
/* The four inspection fields (disposable, role, free_provider, suggestion) as new references;
 * -1 with an exception set (then none are held). */
int pysmtpc_inspection_values(const smtpc_inspection *x, PyObject *out[4]);

/* Build a smtpcode.Reply from a decoded reply (new reference, NULL with an exception set). */
PyObject *pysmtpc_reply_new(const smtpc_decoded *d);
/* smtpcode.ReplyError (borrowed). */
extern PyObject *pysmtpc_ReplyError;

#endif
