/*
 * socks.c -- a SOCKS5 client handshake (RFC 1928, username/password of RFC 1929) as a machine
 * without I/O, beside the SMTP dialog: bytes from the proxy go in, bytes to send come out, and
 * it ends with the tunnel open or with one error value. The engine (or any other driver)
 * connects to the proxy, runs this to completion, then hands the connection to the dialog.
 *
 * Only CONNECT is spoken. The target is an IP address (socks5://: we resolved it) or a host
 * name (socks5h://: the proxy resolves it, so the MX host's name goes on the wire).
 */
#include "smtpcode.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

enum { S_METHOD, S_AUTH, S_REPLY, S_OPEN, S_FAILED };

struct smtpc_socks {
  int state;
  int err;
  const char *detail;
  unsigned char out[3 + 2 + 255 + 255 + 8]; /* the longest message: the RFC 1929 request */
  size_t outlen;
  unsigned char in[4 + 1 + 255 + 2];        /* the longest reply: a domain-name address  */
  size_t have, need;
  unsigned char req[4 + 1 + 255 + 2];       /* the CONNECT request, sent after the method */
  size_t reqlen;
  unsigned char auth[3 + 255 + 255];
  size_t authlen;
};

/* ---------------------------------------------------------------------------------------- */
/* the proxy URL */

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decode s[0..n) into out (size cap, NUL-terminated). Returns the length or -1. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap) {
  size_t i, w = 0;
  for (i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      int hi, lo;
      if (i + 2 >= n) return -1;
      hi = hexval((unsigned char)s[i + 1]);
      lo = hexval((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      c = hi * 16 + lo;
      i += 2;
    }
    if (c == 0 || w + 1 >= cap) return -1;
    out[w++] = (char)c;
  }
  out[w] = '\0';
  return (long)w;
}

int smtpc_proxy_parse(const char *url, size_t len, smtpc_proxy *out) {
  const char *p, *end, *at, *colon, *hostend;
  size_t i;
  long n;
  if (url == NULL || out == NULL) return SMTPC_EINVAL;
  memset(out, 0, sizeof *out);
  end = url + len;
  for (i = 0; i < len; i++)
    if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f) return SMTPC_EINVAL;
  if (len > 10 && memcmp(url, "socks5h://", 10) == 0) {
    out->remote_dns = 1;
    p = url + 10;
  } else if (len > 9 && memcmp(url, "socks5://", 9) == 0) {
    p = url + 9;
  } else {
    return SMTPC_EINVAL;
  }
  /* the last '@' ends the credentials: a password may carry '@' only percent-encoded, but
   * being lenient here costs nothing */
  at = NULL;
  for (i = 0; p + i < end; i++)
    if (p[i] == '@') at = p + i;
    else if (p[i] == '/') break;
  if (p + i != end && !(p + i + 1 == end && p[i] == '/')) return SMTPC_EINVAL; /* a path */
  if (p + i < end) end = p + i;
  if (at) {
    colon = memchr(p, ':', (size_t)(at - p));
    if (colon == NULL) return SMTPC_EINVAL; /* RFC 1929 needs both */
    n = pct_decode(p, (size_t)(colon - p), out->user, sizeof out->user);
    if (n < 1) return SMTPC_EINVAL;
    n = pct_decode(colon + 1, (size_t)(at - colon - 1), out->pass, sizeof out->pass);
    if (n < 1) return SMTPC_EINVAL;
    out->auth = 1;
    p = at + 1;
  }
  if (p < end && *p == '[') {
    hostend = memchr(p, ']', (size_t)(end - p));
    if (hostend == NULL || hostend - p - 1 < 2 || (size_t)(hostend - p - 1) >= sizeof out->host)
      return SMTPC_EINVAL;
    memcpy(out->host, p + 1, (size_t)(hostend - p - 1));
    out->host[hostend - p - 1] = '\0';
    {
      unsigned char a6[16];
      if (inet_pton(AF_INET6, out->host, a6) != 1) return SMTPC_EINVAL;
    }
    p = hostend + 1;
  } else {
    hostend = p;
    while (hostend < end && *hostend != ':') hostend++;
    if (hostend == p || (size_t)(hostend - p) >= sizeof out->host) return SMTPC_EINVAL;
    for (i = 0; p + i < hostend; i++) {
      int c = (unsigned char)p[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-' || c == '_'))
        return SMTPC_EINVAL;
    }
    memcpy(out->host, p, (size_t)(hostend - p));
    out->host[hostend - p] = '\0';
    p = hostend;
  }
  out->port = 1080;
  if (p < end) {
    long port = 0;
    if (*p != ':' || p + 1 == end || end - p > 6) return SMTPC_EINVAL;
    for (p++; p < end; p++) {
      if (*p < '0' || *p > '9') return SMTPC_EINVAL;
      port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535) return SMTPC_EINVAL;
    out->port = (int)port;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* the machine */

static void fail(smtpc_socks *s, int err, const char *detail) {
  s->state = S_FAILED;
  s->err = err;
  s->detail = detail;
  s->outlen = 0;
}

static void emit(smtpc_socks *s, const unsigned char *p, size_t n) {
  memcpy(s->out + s->outlen, p, n);
  s->outlen += n;
}

smtpc_socks *smtpc_socks_new(const smtpc_proxy *proxy, const char *target, int port, int *err) {
  smtpc_socks *s;
  unsigned char a[16];
  size_t tl, ul, pl;
  int e;
  if (err == NULL) err = &e;
  *err = SMTPC_EINVAL;
  if (proxy == NULL || target == NULL || port < 1 || port > 65535) return NULL;
  tl = strlen(target);
  ul = strlen(proxy->user);
  pl = strlen(proxy->pass);
  if (tl == 0 || tl > 255 || (proxy->auth && (ul == 0 || ul > 255 || pl == 0 || pl > 255)))
    return NULL;
  if ((s = calloc(1, sizeof *s)) == NULL) {
    *err = SMTPC_ENOMEM;
    return NULL;
  }
  /* CONNECT: version 5, command 1, reserved, the address, the port */
  s->req[0] = 5;
  s->req[1] = 1;
  s->req[2] = 0;
  if (inet_pton(AF_INET, target, a) == 1) {
    s->req[3] = 1;
    memcpy(s->req + 4, a, 4);
    s->reqlen = 8;
  } else if (inet_pton(AF_INET6, target, a) == 1) {
    s->req[3] = 4;
    memcpy(s->req + 4, a, 16);
    s->reqlen = 20;
  } else {
    s->req[3] = 3;
    s->req[4] = (unsigned char)tl;
    memcpy(s->req + 5, target, tl);
    s->reqlen = 5 + tl;
  }
  s->req[s->reqlen++] = (unsigned char)(port >> 8);
  s->req[s->reqlen++] = (unsigned char)(port & 0xff);
  if (proxy->auth) {
    s->auth[0] = 1; /* the subnegotiation's version */
    s->auth[1] = (unsigned char)ul;
    memcpy(s->auth + 2, proxy->user, ul);
    s->auth[2 + ul] = (unsigned char)pl;
    memcpy(s->auth + 3 + ul, proxy->pass, pl);
    s->authlen = 3 + ul + pl;
  }
  /* the greeting: with credentials we offer them only, so a proxy cannot talk us into going
   * without the account the user configured */
  {
    unsigned char hello[3] = {5, 1, 0};
    if (proxy->auth) hello[2] = 2;
    emit(s, hello, 3);
  }
  s->state = S_METHOD;
  s->need = 2;
  *err = 0;
  return s;
}

void smtpc_socks_free(smtpc_socks *s) { free(s); }

static const char *reply_detail(int rep) {
  switch (rep) {
  case 1: return "SOCKS5 reply 1: general SOCKS server failure";
  case 2: return "SOCKS5 reply 2: connection not allowed by ruleset";
  case 3: return "SOCKS5 reply 3: network unreachable";
  case 4: return "SOCKS5 reply 4: host unreachable";
  case 5: return "SOCKS5 reply 5: connection refused";
  case 6: return "SOCKS5 reply 6: TTL expired";
  case 7: return "SOCKS5 reply 7: command not supported";
  case 8: return "SOCKS5 reply 8: address type not supported";
  default: return "SOCKS5 reply with an unassigned code";
  }
}

static int reply_err(int rep) {
  switch (rep) {
  case 2: return SMTPC_EPROXYDENIED;
  case 3:
  case 4: return SMTPC_EPROXYUNREACH;
  case 5: return SMTPC_EPROXYREFUSED;
  case 6: return SMTPC_EPROXYTTL;
  default: return SMTPC_EPROXY;
  }
}

/* s->in holds s->need octets of the current message: act on it. */
static void step(smtpc_socks *s) {
  const unsigned char *m = s->in;
  switch (s->state) {
  case S_METHOD:
    if (m[0] != 5) return fail(s, SMTPC_EPROXY, "not a SOCKS5 proxy (bad version in its reply)");
    if (m[1] == 0xff)
      return fail(s, SMTPC_EPROXYAUTH, s->authlen ? "the proxy refused username/password"
                                                  : "the proxy requires authentication");
    if (m[1] == 2 && s->authlen) {
      emit(s, s->auth, s->authlen);
      s->state = S_AUTH;
      s->need = 2;
    } else if (m[1] == 0 && !s->authlen) {
      emit(s, s->req, s->reqlen);
      s->state = S_REPLY;
      s->need = 5;
    } else {
      return fail(s, SMTPC_EPROXY, "the proxy chose a method that was not offered");
    }
    break;
  case S_AUTH:
    if (m[0] != 1) return fail(s, SMTPC_EPROXY, "malformed authentication reply from the proxy");
    if (m[1] != 0) return fail(s, SMTPC_EPROXYAUTH, "the proxy rejected the username/password");
    emit(s, s->req, s->reqlen);
    s->state = S_REPLY;
    s->need = 5;
    break;
  case S_REPLY:
    if (s->need == 5) { /* version, reply, reserved, address type, first address octet */
      size_t total;
      if (m[0] != 5) return fail(s, SMTPC_EPROXY, "malformed CONNECT reply from the proxy");
      if (m[1] != 0) return fail(s, reply_err(m[1]), reply_detail(m[1]));
      if (m[3] == 1) total = 4 + 4 + 2;
      else if (m[3] == 4) total = 4 + 16 + 2;
      else if (m[3] == 3 && m[4] > 0) total = 4 + 1 + m[4] + 2;
      else return fail(s, SMTPC_EPROXY, "malformed CONNECT reply from the proxy");
      s->need = total;
      if (s->have < s->need) return; /* read the bound address too, then the tunnel is open */
    }
    s->state = S_OPEN;
    return;
  default:
    return;
  }
  s->have = 0;
}

int smtpc_socks_feed(smtpc_socks *s, const char *buf, size_t len, size_t *used) {
  size_t i = 0;
  if (used) *used = 0;
  if (s == NULL || (buf == NULL && len > 0)) return SMTPC_EINVAL;
  while (s->state != S_OPEN && s->state != S_FAILED && i < len) {
    size_t take = s->need - s->have;
    if (take > len - i) take = len - i;
    memcpy(s->in + s->have, buf + i, take);
    s->have += take;
    i += take;
    if (s->have == s->need) step(s);
  }
  if (used) *used = i;
  /* bytes a proxy sends before it has answered are not ours to ignore: they are a violation */
  if (s->state == S_FAILED) return s->err;
  return s->state == S_OPEN ? 1 : 0;
}

int smtpc_socks_eof(smtpc_socks *s) {
  if (s->state == S_OPEN) return 0;
  if (s->state != S_FAILED)
    fail(s, SMTPC_EPROXYCLOSED, "the proxy closed the connection during the SOCKS5 handshake");
  return s->err;
}

const char *smtpc_socks_output(const smtpc_socks *s, size_t *len) {
  *len = s->outlen;
  return (const char *)s->out;
}

void smtpc_socks_consume(smtpc_socks *s) { s->outlen = 0; }

int smtpc_socks_state(const smtpc_socks *s) {
  return s->state == S_OPEN ? 1 : s->state == S_FAILED ? s->err : 0;
}

const char *smtpc_socks_detail(const smtpc_socks *s) { return s->detail; }
