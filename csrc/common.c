/* common.c -- version, error strings and reason names: the tables behind the X-macros of
 * smtpcode.h, kept in one place so every binding reads the same names. */
#include <string.h>

#include "internal.h"

const char *smtpc_version(void) { return SMTPC_VERSION; }

int smtpc_library_init(void) {
  int a = smtpc__classify_prepare(), b = smtpc__bmta_prepare();
  return a < 0 ? a : b;
}

static const char *const err_msgs[] = {
  "success",
#define XX(name, msg) msg,
  SMTPC_ERRNO_MAP(XX)
#undef XX
};

static const char *const err_names[] = {
  "OK",
#define XX(name, msg) #name,
  SMTPC_ERRNO_MAP(XX)
#undef XX
};

const char *smtpc_strerror(int err) {
  if (err > 0 || -err >= SMTPC__EIDX_COUNT) return "unknown error";
  return err_msgs[-err];
}

const char *smtpc_err_name(int err) {
  if (err > 0 || -err >= SMTPC__EIDX_COUNT) return "UNKNOWN";
  return err_names[-err];
}

static const char *const reason_names[] = {
#define XX(id, name) name,
  SMTPC_REASON_MAP(XX)
#undef XX
};

const char *smtpc_reason_name(int reason) {
  if (reason < 0 || reason >= SMTPC_REASON_COUNT) return NULL;
  return reason_names[reason];
}

int smtpc_reason_from_name(const char *name, size_t len) {
  int i;
  if (name == NULL) return -1;
  for (i = 0; i < SMTPC_REASON_COUNT; i++) {
    if (strlen(reason_names[i]) == len && memcmp(reason_names[i], name, len) == 0) return i;
  }
  return -1;
}
