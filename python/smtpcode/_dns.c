/* _dns.c -- Python binding for the dns module (stub until the module lands). */
#include "_smtpcode.h"

int pysmtpc_init_dns(PyObject *module) { (void)module; return 0; }
