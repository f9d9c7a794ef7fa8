/* _verify.c -- Python binding for the verify module (stub until the module lands). */
#include "_smtpcode.h"

int pysmtpc_init_verify(PyObject *module) { (void)module; return 0; }
