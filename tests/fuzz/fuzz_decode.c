/* fuzz_decode.c -- decode and classify of arbitrary bytes: no out-of-bounds read (the input is
 * copied to an exact-size heap block so ASan sees any overrun), views stay inside the input,
 * and the classification is always one of the known reasons. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const commands[] = {NULL, "RCPT", "MAIL", "DATA", "CONN", "EHLO"};
static const char *const hosts[] = {NULL, "gmail-smtp-in.l.google.com", "mx.example.jp",
                                    "example-com.mail.protection.outlook.com"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  smtpc_decoded d;
  smtpc_context ctx;
  char *text;
  size_t i;
  int rc;
  if (size < 1) return 0;
  ctx.command = commands[data[0] % 6];
  ctx.host = hosts[(data[0] / 6) % 4];
  text = malloc(size - 1 ? size - 1 : 1);
  if (text == NULL) return 0;
  memcpy(text, data + 1, size - 1);
  rc = smtpc_decode(text, size - 1, &ctx, &d);
  if (rc == 0) {
    if (d.cls.reason < 0 || d.cls.reason >= SMTPC_REASON_COUNT || d.kind == NULL) abort();
    if (d.code != 0 && (d.code < 100 || d.code > 599)) abort();
    for (i = 0; i < d.nlines; i++) {
      if (d.lines[i].ptr < text || d.lines[i].ptr + d.lines[i].len > text + (size - 1)) abort();
    }
    /* the framing around a reply and the host it names are views into the input too */
    if (d.frame.len && (d.frame.ptr < text || d.frame.ptr + d.frame.len > text + (size - 1))) abort();
    if (d.frame_host.len &&
        (d.frame_host.ptr < text || d.frame_host.ptr + d.frame_host.len > text + (size - 1)))
      abort();
  }
  rc = smtpc_classify(550, "5.7.1", text, size - 1, &ctx, &d);
  if (rc == 0 && (d.cls.reason < 0 || d.cls.reason >= SMTPC_REASON_COUNT)) abort();
  free(text);
  return 0;
}
