/*
 * smtpcode.h -- the one public header of libsmtpcode.
 *
 * Two jobs from one C core:
 *   - decode and classify SMTP replies and bounce diagnostics (no I/O);
 *   - probe addresses by SMTP on libuv without sending mail.
 *
 * Conventions (after libuv and hiredis):
 *   - functions return 0 or a positive count on success, a negative SMTPC_E* code on failure;
 *   - caller-owned structs are filled in place; pointers inside them are views that stay valid
 *     for the lifetime documented next to each function;
 *   - nothing here allocates per call unless it says so.
 */
#ifndef SMTPCODE_H
#define SMTPCODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SMTPC_API __declspec(dllexport)
#elif defined(__GNUC__)
#define SMTPC_API __attribute__((visibility("default")))
#else
#define SMTPC_API
#endif

#define SMTPC_VERSION_MAJOR 0
#define SMTPC_VERSION_MINOR 1
#define SMTPC_VERSION_PATCH 0
#define SMTPC_VERSION "0.1.0"

SMTPC_API const char *smtpc_version(void);

/* Builds now the tables the library otherwise builds on its first use of them: the classifier's
 * phrase automaton and the bounce formats' markers (some 30 ms of work, once per process).
 * Optional, idempotent and safe from any thread. A program on an event loop calls it before
 * the loop runs, so that no first decode holds the loop up; the Python and Lua bindings call
 * it when loaded (in OpenResty: require the module in init_by_lua, before the workers fork).
 * 0, or SMTPC_ENOMEM when a table could not be built: the calls then still answer, with less
 * (a classifier without its phrases, every bounce format tried). */
SMTPC_API int smtpc_library_init(void);

/* ------------------------------------------------------------------------------------------ */
/* Error codes: one X-macro table; the values are negative (SMTPC_EBADCODE == -3 ...).        */
/* Later modules append their rows at the end so that earlier values never change.            */

#define SMTPC_ERRNO_MAP(XX)                                                          \
  XX(NOMEM,        "out of memory")                                                  \
  XX(INVAL,        "invalid argument")                                               \
  XX(BADCODE,      "line does not start with a 3-digit reply code")                  \
  XX(BADSEP,       "reply code is not followed by a space, a hyphen or the line end")\
  XX(CODECHANGE,   "reply code changed inside a multi-line reply")                   \
  XX(LINETOOLONG,  "reply line is longer than the line limit")                       \
  XX(TOOMANYLINES, "reply has more lines than the line-count limit")                 \
  XX(TOOBIG,       "reply is larger than the reply size limit")                      \
  XX(EMPTY,        "no reply text")                                                  \
  XX(BADKEY,       "not a reply code, an enhanced status code or a reason name")     \
  XX(BADLANG,      "unsupported language (use \"en\" or \"ja\")")                    \
  XX(BADSTATUS,    "malformed enhanced status code")                                 \
  XX(BADADDRESS,   "invalid mail address")                                           \
  XX(DNS,          "DNS lookup failed")                                              \
  XX(TIMEOUT,      "timed out")                                                      \
  XX(CANCELED,     "operation canceled")                                             \
  XX(TLS,          "TLS failure")                                                    \
  XX(PROTO,        "SMTP protocol violation by the peer")                            \
  XX(CLOSED,       "connection closed")                                              \
  XX(PROXY,        "SOCKS5 proxy failure (general failure or a malformed reply)")   \
  XX(PROXYAUTH,    "SOCKS5 proxy authentication failed")                             \
  XX(PROXYDENIED,  "the SOCKS5 proxy's rules do not allow the connection")           \
  XX(PROXYUNREACH, "the SOCKS5 proxy cannot reach the host (network/host unreachable)")\
  XX(PROXYREFUSED, "the host refused the SOCKS5 proxy's connection")                 \
  XX(PROXYTTL,     "SOCKS5 proxy: TTL expired")                                      \
  XX(PROXYCLOSED,  "the connection through the SOCKS5 proxy was closed")             \
  XX(PROXYCONNECT, "cannot connect to the SOCKS5 proxy")                             \
  XX(CACHE,        "the result cache file is unusable (not an SQLite database, or unreadable)") \
  XX(MSGLINE,      "message line is longer than the line limit")                     \
  XX(TOOMANYHEADERS, "message or part has more header fields than the limit")        \
  XX(TOOMANYPARTS, "message has more MIME parts than the limit")                     \
  XX(TOODEEP,      "MIME parts are nested deeper than the limit")

enum smtpc__errno_index {
  SMTPC__EIDX_NONE = 0,
#define SMTPC__XX(name, msg) SMTPC__EIDX_##name,
  SMTPC_ERRNO_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC__EIDX_COUNT
};

typedef enum smtpc_errno {
  SMTPC_OK = 0,
#define SMTPC__XX(name, msg) SMTPC_E##name = -SMTPC__EIDX_##name,
  SMTPC_ERRNO_MAP(SMTPC__XX)
#undef SMTPC__XX
} smtpc_errno;

/* Message for an error code ("unknown error" for values outside the table). */
SMTPC_API const char *smtpc_strerror(int err);
/* Name of an error code without the prefix, e.g. "BADCODE". */
SMTPC_API const char *smtpc_err_name(int err);

/* ------------------------------------------------------------------------------------------ */
/* Reasons (Sisimai's names, so results interoperate).                                        */

#define SMTPC_REASON_MAP(XX)                                                         \
  XX(UNDEFINED, "undefined")                                                         \
  XX(AUTHFAILURE, "authfailure")                                                     \
  XX(BADREPUTATION, "badreputation")                                                 \
  XX(BLOCKED, "blocked")                                                             \
  XX(CONTENTERROR, "contenterror")                                                   \
  XX(DELIVERED, "delivered")                                                         \
  XX(EMAILTOOLARGE, "emailtoolarge")                                                 \
  XX(EXPIRED, "expired")                                                             \
  XX(FAILEDSTARTTLS, "failedstarttls")                                               \
  XX(FEEDBACK, "feedback")                                                           \
  XX(FILTERED, "filtered")                                                           \
  XX(HASMOVED, "hasmoved")                                                           \
  XX(HOSTUNKNOWN, "hostunknown")                                                     \
  XX(MAILBOXFULL, "mailboxfull")                                                     \
  XX(MAILERERROR, "mailererror")                                                     \
  XX(NETWORKERROR, "networkerror")                                                   \
  XX(NORELAYING, "norelaying")                                                       \
  XX(NOTACCEPT, "notaccept")                                                         \
  XX(NOTCOMPLIANTRFC, "notcompliantrfc")                                             \
  XX(ONHOLD, "onhold")                                                               \
  XX(POLICYVIOLATION, "policyviolation")                                             \
  XX(RATELIMITED, "ratelimited")                                                     \
  XX(REJECTED, "rejected")                                                           \
  XX(REQUIREPTR, "requireptr")                                                       \
  XX(SECURITYERROR, "securityerror")                                                 \
  XX(SPAMDETECTED, "spamdetected")                                                   \
  XX(SUPPRESSED, "suppressed")                                                       \
  XX(SUSPEND, "suspend")                                                             \
  XX(SYNTAXERROR, "syntaxerror")                                                     \
  XX(SYSTEMERROR, "systemerror")                                                     \
  XX(SYSTEMFULL, "systemfull")                                                       \
  XX(USERUNKNOWN, "userunknown")                                                     \
  XX(VACATION, "vacation")                                                           \
  XX(VIRUSDETECTED, "virusdetected")

typedef enum smtpc_reason {
#define SMTPC__XX(id, name) SMTPC_REASON_##id,
  SMTPC_REASON_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC_REASON_COUNT
} smtpc_reason;

/* "userunknown" for SMTPC_REASON_USERUNKNOWN; NULL when out of range. */
SMTPC_API const char *smtpc_reason_name(int reason);
/* Reason for a name (exact, lower case); -1 when unknown. */
SMTPC_API int smtpc_reason_from_name(const char *name, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Reply reader (reply.c): bytes in, complete replies out; no I/O.                            */

/* A view into memory owned by someone else. */
typedef struct smtpc_span {
  const char *ptr;
  size_t len;
} smtpc_span;

/* Bounds on what a server may send as one reply. RFC 5321 allows 512 octets a line, but real
 * servers send longer lines (Microsoft's and Google's explanations reach ~1000), so the line
 * bound is generous; the count and size bounds stop endless multi-line replies. */
#define SMTPC_MAX_LINE_DEFAULT  4096   /* octets per line, line end included   */
#define SMTPC_MAX_LINES_DEFAULT 128    /* lines per reply                      */
#define SMTPC_MAX_REPLY_DEFAULT 65536  /* octets per reply, line ends included */

typedef struct smtpc_limits {
  size_t max_line;   /* 0 = default */
  size_t max_lines;  /* 0 = default; never more than SMTPC_MAX_LINES_DEFAULT */
  size_t max_reply;  /* 0 = default */
} smtpc_limits;

/* Enhanced status code text, "5.1.1" .. "5.999.999" plus NUL. */
#define SMTPC_STATUS_SIZE 12

/* One complete reply. */
typedef struct smtpc_reply {
  int code;                       /* 100..599                                              */
  char status[SMTPC_STATUS_SIZE]; /* first RFC 2034 code on its lines, "" when none         */
  size_t nlines;
  const smtpc_span *lines;        /* text of each line: code, separator, status removed    */
  size_t size;                    /* octets the reply took on the wire                     */
} smtpc_reply;

/* Zero-copy parse of one reply at the start of buf (picohttpparser style).
 * Returns the number of octets consumed (> 0) with out/lines filled as views into buf,
 * 0 when buf holds only part of a reply, or a negative error; *errpos (may be NULL) gets the
 * offset in buf where the error was found. `lines` must have room for limits->max_lines. */
SMTPC_API long smtpc_parse_reply(const char *buf, size_t len, const smtpc_limits *limits,
                                 smtpc_reply *out, smtpc_span *lines, size_t *errpos);

typedef struct smtpc_reader smtpc_reader;

/* NULL limits = defaults. Returns NULL when out of memory. */
SMTPC_API smtpc_reader *smtpc_reader_new(const smtpc_limits *limits);
SMTPC_API void smtpc_reader_free(smtpc_reader *r);
/* Append bytes. Returns 0 or the sticky error. Invalidates views from earlier replies. */
SMTPC_API int smtpc_reader_feed(smtpc_reader *r, const char *buf, size_t len);
/* Take the next complete reply: 1 = *out filled (views valid until the next feed, next or
 * free), 0 = need more bytes, < 0 = sticky error (every later call returns it too). */
SMTPC_API int smtpc_reader_next(smtpc_reader *r, smtpc_reply *out);
/* The sticky error (0 when none) and the offset in the whole stream where it was found. */
SMTPC_API int smtpc_reader_error(const smtpc_reader *r, uint64_t *offset);
/* Octets fed but not yet returned as part of a reply. */
SMTPC_API size_t smtpc_reader_pending(const smtpc_reader *r);

/* ------------------------------------------------------------------------------------------ */
/* Enhanced status codes (status.c, RFC 3463).                                                */

/* Parse "c.sss.ddd" at the start of s (class 2, 4 or 5; subject and detail 1-3 digits,
 * no leading zeros beyond a single 0). Returns octets consumed (> 0) or SMTPC_EBADSTATUS.
 * On success, if out is not NULL, writes the canonical text (NUL-terminated). */
SMTPC_API int smtpc_status_parse(const char *s, size_t len, char out[SMTPC_STATUS_SIZE]);

/* ------------------------------------------------------------------------------------------ */
/* Classification and decoding (decode.c, classify.c).                                        */

/* What the caller knows beyond the text; every field may be NULL. */
typedef struct smtpc_context {
  const char *command;  /* SMTP command the reply answered: "RCPT", "DATA", "MAIL", "CONN" ... */
  const char *host;     /* remote host name, or the recipient's domain                          */
} smtpc_context;

typedef struct smtpc_class {
  int reason;           /* smtpc_reason                                                */
  int temporary;        /* 4xx reply, or class-4 status when there is no code           */
  int hard_bounce;      /* retrying can never succeed for this address                 */
  int retry;            /* a sender should try again later                             */
  int retry_after;      /* seconds the reply implies before a retry, 0 when none       */
  int greylisted;       /* a greylisting deferral                                      */
  const char *provider; /* "google", "microsoft" ... when a provider rule decided; NULL */
  const char *command;  /* the command the reply answered: the context's, else the one the
                           text's framing names ("in reply to RCPT TO command"): "RCPT",
                           "MAIL", "DATA", "CONN", "HELO", "EHLO" ...; NULL when unknown */
  int documented_code;  /* with no reply code: the one code the recognised provider's own
                           table gives for these words (rules/provider_codes.def), else 0 */
} smtpc_class;

#define SMTPC_DECODE_MAX_LINES SMTPC_MAX_LINES_DEFAULT

typedef struct smtpc_decoded {
  int code;                            /* 0 when the text carries none                     */
  char status[SMTPC_STATUS_SIZE];      /* "" when none                                     */
  const char *kind;                    /* "success" "intermediate" "transient" "permanent"
                                          "unknown"                                         */
  smtpc_span frame;                    /* text before the reply when a relaying MTA or a
                                          bounce wrapped it ("host X[ip] said:"), else empty */
  smtpc_span frame_host;               /* the remote host that framing names, else empty   */
  smtpc_span frame_tail;               /* Postfix's trailing "(in reply to X command)"      */
  smtpc_class cls;
  /* Where `code` came from: "text", "given" (smtpc_classify's caller) or, when the text held
   * no code, "provider": the provider's documentation pairs these words with exactly one
   * code, reported in code_inferred (code stays 0). NULL and 0 when there is neither. */
  const char *code_source;
  int code_inferred;
  size_t nlines;
  smtpc_span lines[SMTPC_DECODE_MAX_LINES]; /* views into the caller's text                 */
} smtpc_decoded;

/* Decode one reply or bounce diagnostic ("smtp; 550 5.1.1 ...", a reply folded onto one line
 * as logs write it, a multi-line reply, or plain text). The line views point into `text`.
 * Returns 0, or SMTPC_EEMPTY / SMTPC_EBADCODE / SMTPC_ETOOMANYLINES ... for malformed input. */
SMTPC_API int smtpc_decode(const char *text, size_t len, const smtpc_context *ctx,
                           smtpc_decoded *out);

/* The same decision for callers that hold the parts already: code 0 and status NULL/"" mean
 * absent (then they are taken from the text when it carries them). */
SMTPC_API int smtpc_classify(int code, const char *status, const char *text, size_t len,
                             const smtpc_context *ctx, smtpc_decoded *out);

/* The decision alone, over lines that are already split (used by decode and the engine). */
SMTPC_API void smtpc_classify_lines(int code, const char *status, const smtpc_span *lines,
                                    size_t nlines, const smtpc_context *ctx, smtpc_class *out);

/* "success", "intermediate", "transient", "permanent" or "unknown" for a code (0 = none)
 * and a status ("" = none). */
SMTPC_API const char *smtpc_kind(int code, const char *status);

/* ------------------------------------------------------------------------------------------ */
/* Catalog (catalog.c, data in catalog/ *.def).                                               */

typedef struct smtpc_explanation {
  const char *key;          /* the normalised key: "550", "5.1.1", "X.1.1", "5xx", "5.x.x" or
                               "userunknown"                                                */
  const char *title;
  const char *description;  /* what the reply means                                         */
  const char *causes;       /* why it happens: the usual causes (ja: 原因)                  */
  const char *fixes;        /* what the sender should do about it (ja: 対処法)              */
  const char *action;       /* the same string as fixes, kept for callers written before it */
  char buf[4096];           /* storage for entries composed from the digits' meanings     */
} smtpc_explanation;

/* key: "550", "5.1.1", "X.1.1" (or "x.1.1"), a class ("5xx" or "5": the reply code class;
 * "5.x.x": the status class) or a reason name (any letter case); lang: "en" (NULL) or "ja".
 * An enhanced status code with its class is explained as that class: the class's sentences
 * are added only where they hold for the detail, and a detail can have causes and fixes of
 * its own per class (4.1.1 is not 5.1.1).
 * Returns 0, SMTPC_EBADKEY for a malformed key, SMTPC_EBADLANG. Strings live in *out or in
 * static storage: valid as long as *out. Every field is a non-empty string. */
SMTPC_API int smtpc_explain(const char *key, size_t keylen, const char *lang,
                            smtpc_explanation *out);
/* The same for a code given as a number: 100-599, or 1-5 for the class ("5xx"). */
SMTPC_API int smtpc_explain_code(int code, const char *lang, smtpc_explanation *out);

/* ------------------------------------------------------------------------------------------ */
/* Addresses (address.c) -- section owned by the address module.                              */
/* SMTPC-SECTION: address */

/* RFC 5321 limits (octets). The whole-address bound is the 256-octet Path minus "<" and ">". */
#define SMTPC_ADDR_MAX_LOCAL   64
#define SMTPC_ADDR_MAX_LABEL   63
#define SMTPC_ADDR_MAX_DOMAIN  255
#define SMTPC_ADDR_MAX_ADDRESS 254
/* Input longer than this is refused before any other work (hostile input stays cheap). */
#define SMTPC_ADDR_MAX_INPUT   1024

/* Why an address was rejected: one row per kind, (ID, name, "message"); the name is the
 * machine-readable form used by the bindings. New kinds are appended at the end. */
#define SMTPC_ADDR_KIND_MAP(XX)                                                          \
  XX(EMPTY,            empty,            "the address is empty") \
  XX(TOO_LONG,         too_long,         "the address is longer than 254 octets") \
  XX(NO_AT,            no_at,            "no @ between local part and domain") \
  XX(MULTIPLE_AT,      multiple_at,      "more than one @ outside a quoted local part") \
  XX(EMPTY_LOCAL,      empty_local,      "the local part is empty") \
  XX(LOCAL_TOO_LONG,   local_too_long,   "the local part is longer than 64 octets") \
  XX(BAD_CHAR,         bad_char,         "character not allowed in an unquoted local part") \
  XX(LEADING_DOT,      leading_dot,      "the local part starts with a dot") \
  XX(TRAILING_DOT,     trailing_dot,     "the local part ends with a dot") \
  XX(CONSECUTIVE_DOTS, consecutive_dots, "two consecutive dots in the local part") \
  XX(UNBALANCED_QUOTE, unbalanced_quote, "quoted local part without its closing quote") \
  XX(TEXT_AFTER_QUOTE, text_after_quote, "text between the closing quote and the @") \
  XX(BAD_ESCAPE,       bad_escape,       "backslash not followed by a printable ASCII character") \
  XX(EMPTY_DOMAIN,     empty_domain,     "the domain is empty") \
  XX(DOMAIN_TOO_LONG,  domain_too_long,  "the domain is longer than 255 octets") \
  XX(EMPTY_LABEL,      empty_label,      "empty domain label (leading, trailing or consecutive dots)") \
  XX(LABEL_TOO_LONG,   label_too_long,   "a domain label is longer than 63 octets") \
  XX(BAD_DOMAIN_CHAR,  bad_domain_char,  "character not allowed in a domain name") \
  XX(HYPHEN_LABEL,     hyphen_label,     "a domain label starts or ends with a hyphen") \
  XX(NUMERIC_TLD,      numeric_tld,      "all-numeric top-level domain (write an IP address as [192.0.2.1])") \
  XX(BAD_LITERAL,      bad_literal,      "malformed address literal (use [192.0.2.1] or [IPv6:2001:db8::1])") \
  XX(INVALID_UTF8,     invalid_utf8,     "invalid UTF-8") \
  XX(CONTROL_CHAR,     control_char,     "control or invisible format character") \
  XX(IDNA,             idna,             "domain name rejected by IDNA2008")

typedef enum smtpc_addr_kind {
  SMTPC_ADDR_OK = 0,
#define SMTPC__XX(id, name, msg) SMTPC_ADDR_E##id,
  SMTPC_ADDR_KIND_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC_ADDR_KIND_COUNT
} smtpc_addr_kind;

/* Buffer sizes: every text below is NUL-terminated and never longer than its limit. */
#define SMTPC_ADDR_LOCAL_SIZE   (SMTPC_ADDR_MAX_LOCAL + 1)
#define SMTPC_ADDR_DOMAIN_SIZE  (SMTPC_ADDR_MAX_DOMAIN + 1)
#define SMTPC_ADDR_ADDRESS_SIZE (SMTPC_ADDR_MAX_ADDRESS + 1)

/* A parsed mailbox. Everything is copied in: no pointers into the caller's input.
 * None of the texts contains a control character, CR, LF or NUL, so each can be placed
 * inside "RCPT TO:<...>" as it is. */
typedef struct smtpc_address {
  char address[SMTPC_ADDR_ADDRESS_SIZE];       /* normalised: local_part "@" domain            */
  char ascii_address[SMTPC_ADDR_ADDRESS_SIZE]; /* local_part "@" ascii_domain: the form to send;
                                                  it needs SMTPUTF8 only when utf8_local is set */
  char local_part[SMTPC_ADDR_LOCAL_SIZE];      /* case kept; a quoted string stays quoted only
                                                  when a dot-string cannot say it, with the
                                                  minimal backslashes (\" and \\ only)          */
  char domain[SMTPC_ADDR_DOMAIN_SIZE];         /* lower-cased; U-labels kept (IDNA-mapped form);
                                                  a literal is canonical: [192.0.2.1],
                                                  [IPv6:2001:db8::1] (RFC 5952 text)           */
  char ascii_domain[SMTPC_ADDR_DOMAIN_SIZE];   /* A-labels ("xn--..."); == domain when ASCII    */
  int literal;                                 /* domain is an address literal                  */
  int smtputf8;                                /* `address` has non-ASCII (RFC 6531 form)       */
  int utf8_local;                              /* the local part has non-ASCII: RCPT needs the
                                                  SMTPUTF8 extension whatever the domain form  */
  size_t error_offset;                         /* on failure: octet in the input where it was  */
} smtpc_address;

/* Parse one RFC 5321 Mailbox (envelope form: no comments, folding white space, display name or
 * angle brackets), with RFC 6531 UTF-8 and IDNA2008 (non-transitional) domains.
 * Returns 0 with *out filled, SMTPC_EBADADDRESS when the text is not a valid mailbox
 * (*kind says why, out->error_offset where), SMTPC_EINVAL for NULL arguments, or SMTPC_ENOMEM.
 * kind may be NULL; on success it is set to SMTPC_ADDR_OK. Pure and thread-safe: no global
 * state, no I/O, no allocation beyond libidn2's own for non-ASCII and "xn--" labels.
 * Stricter than RFC 5321 on purpose: control, invisible format (Unicode Cf: bidi controls,
 * zero-width joiners...) and line-separator characters are refused everywhere, quoted or not;
 * so are an empty quoted local part ("") and an all-numeric top-level domain. */
SMTPC_API int smtpc_parse_address(const char *s, size_t len, smtpc_address *out, int *kind);

/* "consecutive_dots" for SMTPC_ADDR_ECONSECUTIVE_DOTS, "ok" for SMTPC_ADDR_OK; NULL when out of
 * range. */
SMTPC_API const char *smtpc_address_kind_name(int kind);
/* Human message for a kind ("valid address" for SMTPC_ADDR_OK); NULL when out of range. */
SMTPC_API const char *smtpc_address_kind_message(int kind);

/* SMTPC-END: address */

/* ------------------------------------------------------------------------------------------ */
/* Inspection (inspect.c, tables in inspect_lists.c from tools/update-lists) -- what the      */
/* address itself tells besides SMTP. Pure: no I/O, no allocation, no global state.           */
/* SMTPC-SECTION: inspect */

/* What the caller knows of the domain's mail route (inspect does no DNS itself). */
typedef enum smtpc_route_fact {
  SMTPC_ROUTE_UNKNOWN = 0, /* not looked up: a suggestion is a candidate only              */
  SMTPC_ROUTE_NONE = 1,    /* NXDOMAIN, no MX and no address, or a null MX: takes no mail  */
  SMTPC_ROUTE_OK = 2       /* the domain has a mail route: it is real, never "corrected"  */
} smtpc_route_fact;

typedef struct smtpc_inspection {
  int disposable;     /* the domain, or a domain above it, is a throw-away mail service    */
  int role;           /* the local part (lower-cased, "+tag" removed) names a role: info,
                         postmaster, sales ...                                            */
  int free_provider;  /* the domain is a free mailbox provider (gmail.com, yahoo.co.jp,
                         docomo.ne.jp ...)                                                */
  char suggestion[SMTPC_ADDR_ADDRESS_SIZE]; /* the address with its domain corrected, or
                         "" when none: a suggestion is made only when one well-known mail
                         domain is clearly closest (Damerau-Levenshtein with keyboard
                         adjacency) and the route fact is not SMTPC_ROUTE_OK              */
} smtpc_inspection;

/* Parse s (as smtpc_parse_address) and inspect it. route: smtpc_route_fact. Returns 0,
 * SMTPC_EBADADDRESS (*out zeroed: nothing is said about an invalid address) or
 * SMTPC_EINVAL (NULL out). */
SMTPC_API int smtpc_inspect(const char *s, size_t len, int route, smtpc_inspection *out);
/* The same for an address parsed already (parse_address results, the engine). */
SMTPC_API void smtpc_inspect_address(const smtpc_address *a, int route, smtpc_inspection *out);

/* The single look-ups, on an ASCII (A-label) domain or a local part, any letter case. */
SMTPC_API int smtpc_is_disposable_domain(const char *domain, size_t len);
SMTPC_API int smtpc_is_free_provider(const char *domain, size_t len);
SMTPC_API int smtpc_is_role_local(const char *local, size_t len);
/* The well-known domain a mistyped one stands for: 1 with out filled, 0 when none. */
SMTPC_API int smtpc_suggest_domain(const char *domain, size_t len,
                                   char out[SMTPC_ADDR_DOMAIN_SIZE]);

/* Verdict policy for disposable addresses (smtpc_verify_opts.disposable). */
typedef enum smtpc_disposable_policy {
  SMTPC_DISPOSABLE_RISKY = 0,        /* deliverable becomes risky; other verdicts stay    */
  SMTPC_DISPOSABLE_UNDELIVERABLE = 1 /* every disposable address is undeliverable         */
} smtpc_disposable_policy;

/* "risky" | "undeliverable" -> policy; -1 when unknown. */
SMTPC_API int smtpc_disposable_policy_from_name(const char *name, size_t len);
/* The verdict after the policy (role accounts keep theirs: they are only flagged). */
SMTPC_API int smtpc_verdict_with_inspection(int verdict, const smtpc_inspection *in, int policy);
/* Entries in the tables, for tests and the documentation: 0 disposable, 1 free, 2 role,
 * 3 typo targets; 0 for anything else. */
SMTPC_API size_t smtpc_inspect_table_size(int which);
/* SMTPC-END: inspect */

/* ------------------------------------------------------------------------------------------ */
/* DNS (dns.c) -- section owned by the resolver module.                                        */
/* SMTPC-SECTION: dns */
/*
 * MX resolver: c-ares driven by a libuv loop (no threads, no blocking calls).
 *
 * For a domain it yields the route mail takes: the MX hosts sorted by preference (hosts of equal
 * preference in a fresh random order on every delivery, RFC 5321 5.1), each with its A/AAAA
 * addresses; the implicit MX (the domain's own A/AAAA) when there is no MX; the null MX of
 * RFC 7505. Routes are cached in the resolver for their DNS TTL, negative answers included,
 * and so are the addresses of MX hosts (domains hosted together share them). At most 32
 * domains are resolved at once; more requests wait their turn (the deadline starts then).
 */
#include <sys/socket.h>
#include <netinet/in.h>

struct uv_loop_s;

/* Outcome of a resolution, in smtpc_route.error (0 = a usable route, or a null MX). */
#define SMTPC_DNS_ERROR_MAP(XX)                                                      \
  XX(NXDOMAIN,  "nxdomain",   "the domain does not exist")                           \
  XX(SERVFAIL,  "servfail",   "the DNS server failed (SERVFAIL or a malformed answer)")\
  XX(REFUSED,   "refused",    "the DNS server refused the query or is not listening")\
  XX(TIMEOUT,   "timeout",    "no DNS answer in time")                               \
  XX(NOADDRESS, "no-address", "no mail host of the domain has an address")

enum smtpc_dns_error {
  SMTPC_DNS_OK = 0,
#define SMTPC__XX(id, name, msg) SMTPC_DNS_##id,
  SMTPC_DNS_ERROR_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC_DNS_ERROR_COUNT
};

/* "nxdomain", "servfail", "refused", "timeout", "no-address"; NULL for SMTPC_DNS_OK and for
 * values out of range. */
SMTPC_API const char *smtpc_dns_error_name(int error);
/* A sentence for the error ("" for SMTPC_DNS_OK, NULL out of range). */
SMTPC_API const char *smtpc_dns_error_message(int error);

/* An address ready for uv_tcp_connect(&a.sa): family AF_INET or AF_INET6, port 0 (set the
 * port, in network order, before connecting). */
typedef union smtpc_sockaddr {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} smtpc_sockaddr;

typedef struct smtpc_mx {
  int preference;         /* MX preference; 0 for the implicit MX                          */
  const char *host;       /* lower case, no trailing dot; the domain itself when implicit   */
  size_t naddrs;          /* >= 1: hosts without an address are left out of the route       */
  const smtpc_sockaddr *addrs; /* preferred family first, then the other (see family)      */
} smtpc_mx;

typedef struct smtpc_route {
  const char *domain;     /* the domain asked for: lower case, no trailing dot             */
  int error;              /* SMTPC_DNS_OK or SMTPC_DNS_*; nmx == 0 unless OK               */
  int implicit;           /* no MX records: one entry, host = domain, its own A/AAAA       */
  int null_mx;            /* MX 0 "." is the only MX (RFC 7505): takes no mail; nmx == 0   */
  uint32_t ttl;           /* seconds the answer may still be kept (smallest TTL involved)  */
  size_t nmx;
  const smtpc_mx *mx;     /* sorted by preference; equal preferences shuffled             */
} smtpc_route;

/* Address family choice for smtpc_resolver_opts.family. */
enum smtpc_dns_family {
  SMTPC_DNS_PREFER_IPV4 = 0, /* A and AAAA, IPv4 addresses first (the default)            */
  SMTPC_DNS_PREFER_IPV6,     /* A and AAAA, IPv6 addresses first                          */
  SMTPC_DNS_IPV4_ONLY,       /* A only                                                    */
  SMTPC_DNS_IPV6_ONLY        /* AAAA only                                                 */
};

/* Every field may be 0/NULL for its default; a zeroed struct (or a NULL pointer) is valid. */
typedef struct smtpc_resolver_opts {
  const char *servers;  /* "127.0.0.1:5353,[::1]:53" (comma-separated, port optional);
                           NULL or "" = the system configuration (/etc/resolv.conf).
                           The next server is tried on silence, not on SERVFAIL/REFUSED   */
  int timeout_ms;       /* deadline for one domain's whole resolution; 0 = 5000           */
  int tries;            /* attempts per query and server; 0 = 2. The first waits
                           timeout_ms / tries; c-ares doubles the wait in later rounds     */
  int family;           /* enum smtpc_dns_family                                          */
  int cache_size;       /* routes kept (and as many MX hosts' addresses); 0 = 4096,
                           < 0 = no cache                                                  */
  uint32_t max_ttl;     /* cap on how long a route is cached, s; 0 = 3600                  */
  uint32_t negative_ttl;/* cap on caching NXDOMAIN and no-address answers, s; 0 = 60.
                           Failures (SERVFAIL, REFUSED, timeout) are kept 5 s at most      */
} smtpc_resolver_opts;

typedef struct smtpc_resolver smtpc_resolver;

/* status 0: route is the answer (look at route->error); it is owned by the resolver and valid
 * only during the callback: keep a copy with smtpc_route_dup.
 * status < 0: SMTPC_ECANCELED (the resolver was closed) or SMTPC_ENOMEM; route is NULL.
 * The callback always runs from the loop, never inside smtpc_resolve_mx, exactly once for
 * every call that returned 0. */
typedef void (*smtpc_resolve_cb)(int status, const smtpc_route *route, void *data);
typedef void (*smtpc_resolver_close_cb)(void *data);

/* A resolver on loop. Returns NULL with *err (may be NULL) = SMTPC_EINVAL (bad servers
 * string or options), SMTPC_ENOMEM or SMTPC_EDNS (c-ares could not start). */
SMTPC_API smtpc_resolver *smtpc_resolver_new(struct uv_loop_s *loop,
                                             const smtpc_resolver_opts *opts, int *err);

/* Start resolving domain (ASCII / A-labels; a trailing dot is allowed; case is ignored).
 * Concurrent requests for one domain share one set of queries; cached routes are served
 * without a query. Returns 0, SMTPC_EINVAL (not a host name: empty, too long, a bad
 * character...), SMTPC_ECANCELED (resolver closing) or SMTPC_ENOMEM; cb runs only after 0. */
SMTPC_API int smtpc_resolve_mx(smtpc_resolver *r, const char *domain, smtpc_resolve_cb cb,
                               void *data);

/* Close (libuv style): pending callbacks run with SMTPC_ECANCELED before this returns; the
 * memory is released once the loop has closed the handles, then close_cb(data) runs (it may
 * be NULL). r must not be used after this call. */
SMTPC_API void smtpc_resolver_close(smtpc_resolver *r, smtpc_resolver_close_cb close_cb,
                                    void *data);

typedef struct smtpc_resolver_stats {
  uint64_t resolutions; /* smtpc_resolve_mx calls accepted                                */
  uint64_t cache_hits;  /* answered from the cache                                        */
  uint64_t joined;      /* attached to a resolution already in flight                     */
  uint64_t queries;     /* DNS queries handed to c-ares (MX, A, AAAA)                     */
  size_t cached;        /* routes in the cache now                                        */
} smtpc_resolver_stats;

SMTPC_API void smtpc_resolver_stats_get(const smtpc_resolver *r, smtpc_resolver_stats *out);
/* Forget every cached route and host address. */
SMTPC_API void smtpc_resolver_flush(smtpc_resolver *r);

/* A heap copy of a route (one allocation), or NULL when out of memory. smtpc_route_free takes
 * only routes from smtpc_route_dup and smtpc_resolve_blocking (never a callback's); NULL is
 * fine. */
SMTPC_API smtpc_route *smtpc_route_dup(const smtpc_route *route);
SMTPC_API void smtpc_route_free(smtpc_route *route);

/* Resolve on a private uv loop and wait (for the Lua/Python resolve(); not for event loops).
 * Returns 0 with *out set (free with smtpc_route_free; DNS failures are in (*out)->error), or
 * SMTPC_EINVAL / SMTPC_ENOMEM / SMTPC_EDNS with *out = NULL. */
SMTPC_API int smtpc_resolve_blocking(const char *domain, const smtpc_resolver_opts *opts,
                                     smtpc_route **out);
/* SMTPC-END: dns */

/* ------------------------------------------------------------------------------------------ */
/* Probe engine (dialog.c, engine.c, tls.c) -- section owned by the probe modules.            */
/* SMTPC-SECTION: probe */
/* The caller owns the libuv loop; this header does not include uv.h (uv_loop_t is
 * `struct uv_loop_s`). Every address given to smtpc_verifier_add yields exactly one result,
 * delivered through the result callback from inside uv_run(). DATA is never sent. */

#define SMTPC_VERDICT_MAP(XX)                                                       \
  XX(UNKNOWN, "unknown")                                                            \
  XX(DELIVERABLE, "deliverable")                                                    \
  XX(UNDELIVERABLE, "undeliverable")                                                \
  XX(RISKY, "risky")

typedef enum smtpc_verdict {
#define SMTPC__XX(id, name) SMTPC_VERDICT_##id,
  SMTPC_VERDICT_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC_VERDICT_COUNT
} smtpc_verdict;

/* "deliverable" ...; NULL when out of range. */
SMTPC_API const char *smtpc_verdict_name(int verdict);

typedef enum smtpc_starttls {
  SMTPC_STARTTLS_OPPORTUNISTIC = 0, /* use it when offered; go on in clear when it fails  */
  SMTPC_STARTTLS_REQUIRED = 1,      /* no TLS, no probe: result unknown/failedstarttls    */
  SMTPC_STARTTLS_OFF = 2            /* never                                              */
} smtpc_starttls;

/* "opportunistic" | "required" | "off" -> mode; -1 when unknown. */
SMTPC_API int smtpc_starttls_from_name(const char *name, size_t len);

typedef struct smtpc_verify_opts {
  int port;                 /* SMTP port (25)                                            */
  const char *dns_servers;  /* CSV "127.0.0.1:5353,[::1]:53"; NULL = system config         */
  const char *mail_from;    /* envelope sender; NULL or "" = null reverse path <>         */
  const char *helo;         /* EHLO/HELO name (NULL = "localhost")                          */
  const char *bind_address; /* local IP to connect from; NULL = any                        */
  int concurrency;          /* sessions open at once, all hosts (100)                      */
  int per_host;             /* sessions open at once per MX IP address (2)                 */
  int rcpt_per_session;     /* RCPTs per session, catch-all probe included (50)            */
  int max_rejections;       /* rejected RCPTs per session before a new one (8; Postfix
                               slows down after 10 errors and hangs up at 20); pipelined
                               RCPTs in flight may take a session to twice this at most
                               (see smtpc_dialog_opts)                                     */
  int starttls;             /* smtpc_starttls (opportunistic)                              */
  int tls_verify;           /* 1 = check certificate chain and host name (0)               */
  const char *tls_ca_file;  /* PEM CA bundle for tls_verify; NULL = the system's store     */
  int catch_all;            /* 1 = one random-address RCPT per domain (1)                  */
  int transcript;           /* 1 = results carry the session transcript (0)                */
  double greylist_delay;    /* seconds before a greylisted RCPT is retried (60); < 0 = no  */
  double deadline;          /* seconds from smtpc_verifier_add to each address's result
                               (300); past it the address is reported unknown/expired      */
  double timeout;           /* seconds for the banner and each command's reply (30)        */
  double connect_timeout;   /* seconds for the TCP connect (10)                             */
  double host_pause;        /* seconds between new sessions to one MX IP address (0.1)     */
  int disposable;           /* smtpc_disposable_policy for disposable addresses (risky)     */
  /* bind_address may list several sources, comma-separated: each MX address gets one of
     them, round-robin, and keeps it for the run (greylisting triplets stay stable)         */
  const char *proxy;        /* "socks5://[user:pass@]host[:port]" or "socks5h://..." (the
                               proxy resolves MX names); NULL = connect directly           */
  const char *cache;        /* SQLite file of results kept across runs; NULL = none         */
  double cache_positive_ttl;/* seconds a deliverable (or catch-all) result is reused (31 d) */
  double cache_negative_ttl;/* seconds an undeliverable result is reused (3 d)             */
  double cache_unknown_ttl; /* seconds unknown/risky/temporary results are reused (0: never
                               stored)                                                      */
  int cache_refresh;        /* 1 = probe everything again (results are still stored)       */
} smtpc_verify_opts;

/* Fill *o with the defaults shown above. Call it first, then override fields. */
SMTPC_API void smtpc_verify_opts_init(smtpc_verify_opts *o);

/* One address's result; every pointer is valid only during the result callback. */
typedef struct smtpc_result {
  uint64_t tag;             /* as given to smtpc_verifier_add                             */
  const char *address;      /* the input exactly as given (not NUL-terminated: use len)    */
  size_t address_len;
  int verdict;              /* smtpc_verdict                                               */
  int reason;               /* smtpc_reason                                                */
  smtpc_reply reply;        /* last reply that decided it; code 0 / nlines 0 when none      */
  smtpc_class cls;          /* classification of that reply (reason UNDEFINED when none)   */
  const char *mx;           /* MX host name used, NULL when none was reached                */
  const char *mx_addr;      /* its IP address as text, NULL when none                        */
  int catch_all;            /* -1 unknown, 0 no, 1 the domain accepts any local part        */
  int tls;                  /* 1 when the deciding session ran over TLS                     */
  int greylisted;           /* 1 when the last reply was a greylisting deferral             */
  int error;                /* smtpc_errno for local/network causes (ETIMEOUT, EDNS ...), 0  */
  const char *detail;       /* short human explanation when no reply says it, or NULL       */
  double duration;          /* seconds from smtpc_verifier_add to this result               */
  const char *transcript;   /* session transcript (opts.transcript), NULL otherwise         */
  size_t transcript_len;
  smtpc_inspection inspect; /* disposable, role, free provider, suggestion (made only when
                               DNS said the domain has no mail route or does not exist);
                               zeroed for invalid addresses; verdict has the disposable
                               policy applied                                              */
  int cached;               /* 1 when the result came from the cache (no traffic)           */
  double age;               /* seconds since a cached result was learnt (0 when fresh)       */
} smtpc_result;

/* A copy of r that outlives the result callback (bindings queue these and convert them
 * later): one allocation holding the reply's line views and every string, each also
 * NUL-terminated (address and transcript may contain NULs: use their lengths). Returns NULL
 * when out of memory or r is NULL. Free it with smtpc_result_free (NULL is fine). */
SMTPC_API smtpc_result *smtpc_result_dup(const smtpc_result *r);
SMTPC_API void smtpc_result_free(smtpc_result *r);

struct uv_loop_s;
typedef struct smtpc_verifier smtpc_verifier;
typedef void (*smtpc_result_cb)(smtpc_verifier *v, const smtpc_result *r, void *data);
typedef void (*smtpc_verifier_close_cb)(smtpc_verifier *v);

/* Create a verifier on the caller's loop. NULL opts = defaults. Returns NULL and sets *err
 * (SMTPC_EINVAL for bad options, SMTPC_ENOMEM, SMTPC_EDNS, SMTPC_ETLS) on failure. */
SMTPC_API smtpc_verifier *smtpc_verifier_new(struct uv_loop_s *loop, const smtpc_verify_opts *opts,
                                             smtpc_result_cb cb, void *data, int *err);
/* Queue one address (copied). Syntax errors are reported through the callback (from the
 * loop, never re-entrantly from this call) without network traffic. Returns 0,
 * SMTPC_ENOMEM, or SMTPC_EINVAL after smtpc_verifier_end/cancel/close. */
SMTPC_API int smtpc_verifier_add(smtpc_verifier *v, const char *address, size_t len,
                                 uint64_t tag);
/* No more input: once every pending address is reported, the verifier is done. */
SMTPC_API void smtpc_verifier_end(smtpc_verifier *v);
/* Addresses added but not yet reported (bindings keep a bounded window with it). */
SMTPC_API size_t smtpc_verifier_pending(const smtpc_verifier *v);
/* 1 when smtpc_verifier_end was called and every address has been reported. */
SMTPC_API int smtpc_verifier_done(const smtpc_verifier *v);
/* Stop all work: every pending address is reported (unknown, expired, error SMTPC_ECANCELED)
 * from this call; sessions are closed. Implies smtpc_verifier_end. */
SMTPC_API void smtpc_verifier_cancel(smtpc_verifier *v);
/* Cancel, then free everything once libuv has closed all handles; close_cb (may be NULL)
 * runs from the loop when the memory is gone. Keep running the loop until then. */
SMTPC_API void smtpc_verifier_close(smtpc_verifier *v, smtpc_verifier_close_cb close_cb);
/* The data pointer given to smtpc_verifier_new. */
SMTPC_API void *smtpc_verifier_data(const smtpc_verifier *v);

/* Verdict rules of the probing contract for one address's final answer: code is the RCPT
 * reply's (0 when none), reason its classification, catch_all the domain's (-1, 0, 1).
 * 2xx: deliverable (risky on a catch-all domain); mailboxfull: risky; 5xx userunknown,
 * hasmoved, suspend, hostunknown, notaccept: undeliverable; anything else: unknown. */
SMTPC_API int smtpc_verdict_of(int code, int reason, int catch_all);

/* ---- The dialog (dialog.c): one probe connection's SMTP client as a machine without I/O.
 * Server bytes and timer events go in; bytes to send, "start TLS now", "close now" and one
 * event per recipient come out. The libuv engine drives it; a cosocket or asyncio driver can
 * drive the same machine. It has no DATA command: it cannot send one, whatever the server
 * says. Banner, EHLO (HELO fallback), STARTTLS per mode, EHLO again, MAIL FROM (+ SMTPUTF8),
 * RCPTs pipelined when offered, RSET + new transaction after "452 4.5.3 too many
 * recipients", QUIT. */

/* The commands a reply can answer; also the stage where a recipient's fate was decided. */
#define SMTPC_CMD_MAP(XX) \
  XX(BANNER, "CONN")      \
  XX(EHLO, "EHLO")        \
  XX(HELO, "HELO")        \
  XX(STARTTLS, "STARTTLS")\
  XX(TLS, "TLS")          \
  XX(MAIL, "MAIL")        \
  XX(RCPT, "RCPT")        \
  XX(RSET, "RSET")        \
  XX(QUIT, "QUIT")

typedef enum smtpc_cmd {
#define SMTPC__XX(id, name) SMTPC_CMD_##id,
  SMTPC_CMD_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC_CMD_COUNT
} smtpc_cmd;

/* Command name as smtpc_context.command wants it ("CONN" for the banner). */
SMTPC_API const char *smtpc_cmd_name(int cmd);

/* EHLO keywords the dialog understands. */
#define SMTPC_CAP_MAP(XX)                        \
  XX(PIPELINING, "PIPELINING")                   \
  XX(STARTTLS, "STARTTLS")                       \
  XX(SIZE, "SIZE")                               \
  XX(SMTPUTF8, "SMTPUTF8")                       \
  XX(ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES") \
  XX(8BITMIME, "8BITMIME")

enum smtpc_cap_bit {
#define SMTPC__XX(id, name) SMTPC_CAPBIT_##id,
  SMTPC_CAP_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC_CAPBIT_COUNT
};
#define SMTPC_CAP(id) (1u << SMTPC_CAPBIT_##id)

/* How a recipient's turn ended (smtpc_dialog_event.outcome). */
enum smtpc_rcpt_outcome {
  SMTPC_RCPT_REPLY = 1, /* its RCPT got a reply (reply is set; never a 421)                  */
  SMTPC_RCPT_SESSION,   /* the session failed or refused before its RCPT was answered:
                           stage, reply (421, 554 banner, 5xx MAIL ... or NULL), err, and a
                           reason when the dialog itself decided (failedstarttls,
                           notcompliantrfc for SMTPUTF8 the server lacks)                    */
  SMTPC_RCPT_UNTRIED    /* never sent: the session's rejection budget is spent; use another */
};

typedef struct smtpc_dialog_event {
  size_t index;             /* as returned by smtpc_dialog_add_rcpt                           */
  int outcome;              /* enum smtpc_rcpt_outcome                                        */
  int stage;                /* smtpc_cmd whose reply (or lack of one) decided it               */
  int err;                  /* SMTPC_ETIMEOUT, SMTPC_ECLOSED, SMTPC_EPROTO, SMTPC_ETLS ... or 0 */
  int reason;               /* SMTPC_REASON_UNDEFINED, or the dialog's own decision            */
  const char *detail;       /* static text or NULL                                            */
  const smtpc_reply *reply; /* NULL when none; valid during the callback only                  */
} smtpc_dialog_event;

typedef void (*smtpc_dialog_cb)(void *ud, const smtpc_dialog_event *ev);

typedef struct smtpc_dialog_opts {
  const char *helo;        /* NULL = "localhost"                                          */
  const char *mail_from;   /* NULL or "" = <>                                              */
  int mail_from_utf8;      /* the sender needs SMTPUTF8                                    */
  int starttls;            /* smtpc_starttls                                               */
  size_t max_rejections;   /* 0 = 8: RCPT replies >= 400 in one session. RCPTs in flight
                              count as if rejected, so the budget holds, until the server
                              has accepted this many: then each acceptance allows one
                              more in flight (at most max_rejections more; a rejection
                              halves the extra), so a session ends at 2 x max_rejections
                              rejections in the worst case                                */
  size_t max_inflight;     /* 0 = 64: RCPTs in one pipelined burst                         */
  int transcript;          /* keep a C:/S: transcript (capped at 64 KiB)                   */
  size_t trusted;          /* acceptances earlier sessions to this server have shown: they
                              count as this session's for the window above (capped at
                              max_rejections; the worst case stays 2 x max_rejections)    */
} smtpc_dialog_opts;

typedef struct smtpc_dialog smtpc_dialog;

/* Returns NULL with *err = SMTPC_EINVAL (helo/sender carry CR, LF, controls, '<' '>' or are
 * too long) or SMTPC_ENOMEM. */
SMTPC_API smtpc_dialog *smtpc_dialog_new(const smtpc_dialog_opts *opts, smtpc_dialog_cb cb,
                                         void *ud, int *err);
SMTPC_API void smtpc_dialog_free(smtpc_dialog *d);
/* Add a recipient before the first server bytes. The string is borrowed: it must stay valid
 * until the recipient's event. Returns its index (>= 0), SMTPC_EBADADDRESS (controls, CR/LF,
 * angle brackets, empty or > 255 octets: defence in depth, the parser rejects these first),
 * SMTPC_EINVAL once the dialog has started, or SMTPC_ENOMEM. */
SMTPC_API long smtpc_dialog_add_rcpt(smtpc_dialog *d, const char *addr, size_t len,
                                     int smtputf8);
/* Server bytes (plain text: after STARTTLS the driver decrypts first). Events fire from here.
 * Returns 0 or the error that ended the session (its events have been sent then). */
SMTPC_API int smtpc_dialog_feed(smtpc_dialog *d, const char *buf, size_t len);
/* The reply timer fired / the peer closed (err 0 = SMTPC_ECLOSED). */
SMTPC_API void smtpc_dialog_timeout(smtpc_dialog *d);
SMTPC_API void smtpc_dialog_eof(smtpc_dialog *d, int err);
/* The TLS handshake the dialog asked for ended (ok = 1) or failed (ok = 0). */
SMTPC_API void smtpc_dialog_tls_done(smtpc_dialog *d, int ok);

#define SMTPC_DIALOG_WANT_TLS 1u   /* start the TLS handshake now (send nothing before it)    */
#define SMTPC_DIALOG_WANT_CLOSE 2u /* every recipient has had its event: close the connection */
#define SMTPC_DIALOG_WANT_REPLY 4u /* a reply is awaited: keep a reply timer running          */
SMTPC_API unsigned smtpc_dialog_want(const smtpc_dialog *d);
/* Bytes to send (plain text); the driver takes them all, then calls smtpc_dialog_consume. */
SMTPC_API const char *smtpc_dialog_output(const smtpc_dialog *d, size_t *len);
SMTPC_API void smtpc_dialog_consume(smtpc_dialog *d);
/* Facts about the session: EHLO capabilities (SMTPC_CAP bits), complete replies read so far
 * (restart a reply timer on progress, not on every byte: a server that drips one byte a
 * second must still time out), TLS in use, the transcript, heap octets held. */
SMTPC_API unsigned smtpc_dialog_caps(const smtpc_dialog *d);
SMTPC_API unsigned long smtpc_dialog_replies(const smtpc_dialog *d);
SMTPC_API int smtpc_dialog_tls(const smtpc_dialog *d);
SMTPC_API const char *smtpc_dialog_transcript(const smtpc_dialog *d, size_t *len);
SMTPC_API size_t smtpc_dialog_memory(const smtpc_dialog *d);
/* SMTPC-END: probe */

/* ------------------------------------------------------------------------------------------ */
/* The planner (plan*.c) -- section owned by the planner.                                      */
/* SMTPC-SECTION: plan */
/* The whole batch as a machine without I/O, clock or event loop: grouping by MX, sessions per
 * host, pauses, the rejection budget and adaptive window, catch-all once per domain, greylist
 * retries, backoff on 421, failover, the deadline, one result per address. A driver (the libuv
 * engine, smtpcode.aio in Python, a cosocket driver in Lua) feeds it events and performs the
 * actions it hands out; it decides nothing itself. Calls go one way: driver -> planner ->
 * dialog.
 *
 * Time is a number the driver passes in (microseconds on any monotonic clock it likes); the
 * planner never reads a clock. Memory for the planner's own records comes from opts.alloc.
 * Nothing it hands out needs freeing: pointers in an action stay valid until the next
 * smtpc_plan_next (or smtpc_plan_free).
 *
 * The driver loop: after every event,
 *     while (smtpc_plan_next(p, now, &a)) perform(&a);
 * and when the last WAKE's time is reached (a WAKE for `now` means: on the next loop turn,
 * after the I/O at hand), smtpc_plan_tick(p, now) and the same loop.
 * Events may be given from inside perform() (a connect that fails at once, a result callback
 * that adds addresses): they only queue more actions for the same loop. */

typedef struct smtpc_plan smtpc_plan;

typedef struct smtpc_plan_opts {
  smtpc_verify_opts verify; /* the verifier's options; the planner reads the limits, timings,
                               port, sender, HELO, starttls, catch_all and transcript. DNS
                               servers, bind address and TLS files are the driver's business */
  uint64_t seed;            /* catch-all probe local parts: a random value from the driver,
                               a fixed one in simulations (same seed, same run)              */
  /* realloc-like allocator for the planner's records (NULL = realloc/free): size 0 frees.
   * The dialog and the address parser allocate with malloc. */
  void *(*alloc)(void *ud, void *ptr, size_t size);
  void *alloc_ud;
} smtpc_plan_opts;

#define SMTPC_PLAN_ACTION_MAP(XX)                                                             \
  XX(RESOLVE, "resolve")     /* look up name's mail route; answer with smtpc_plan_resolved(token) */ \
  XX(CONNECT, "connect")     /* open TCP session sid to *addr (port set); name = MX host   */ \
  XX(WRITE, "write")         /* send data[len] on sid (plain text: encrypt when TLS is up)  */ \
  XX(START_TLS, "start_tls") /* TLS client handshake on sid, SNI name; then smtpc_plan_tls  */ \
  XX(CLOSE, "close")         /* close sid; call smtpc_plan_released(sid) once it is gone    */ \
  XX(WAKE, "wake")           /* call smtpc_plan_tick at time (or later); replaces the last
                                WAKE; time 0 = no wake needed                              */ \
  XX(RESULT, "result")       /* *result is the one result for one address                  */

enum smtpc_plan_action_type {
  SMTPC_PLAN_NONE = 0,
#define SMTPC__XX(id, name) SMTPC_PLAN_##id,
  SMTPC_PLAN_ACTION_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC_PLAN_ACTION_COUNT
};

typedef struct smtpc_plan_action {
  int type;                    /* enum smtpc_plan_action_type                                */
  unsigned sid;                /* session slot: CONNECT, WRITE, START_TLS, CLOSE (< concurrency) */
  uint64_t token;              /* RESOLVE                                                    */
  uint64_t time;               /* WAKE: absolute, in the driver's clock                      */
  const char *name;            /* RESOLVE: the domain (A-labels); CONNECT, START_TLS: MX host */
  const smtpc_sockaddr *addr;  /* CONNECT                                                    */
  const char *data;            /* WRITE                                                      */
  size_t len;
  const smtpc_result *result;  /* RESULT                                                     */
} smtpc_plan_action;

/* "resolve", "connect" ...; NULL out of range. */
SMTPC_API const char *smtpc_plan_action_name(int type);

/* NULL with *err = SMTPC_EINVAL (bad options, the same checks as smtpc_verifier_new) or
 * SMTPC_ENOMEM. */
SMTPC_API smtpc_plan *smtpc_plan_new(const smtpc_plan_opts *opts, int *err);
SMTPC_API void smtpc_plan_free(smtpc_plan *p);

/* Events. now never goes backwards (a smaller value is taken as the last one seen). Events
 * for a sid or token the planner does not know (or no longer expects) are ignored and return
 * SMTPC_EINVAL: a driver bug or a fuzzer cannot corrupt the state. */
SMTPC_API int smtpc_plan_add(smtpc_plan *p, uint64_t now, const char *address, size_t len,
                             uint64_t tag);
SMTPC_API void smtpc_plan_end(smtpc_plan *p);
/* Every pending address is reported (unknown, expired, ECANCELED); sessions get CLOSE. */
SMTPC_API void smtpc_plan_cancel(smtpc_plan *p, uint64_t now);
/* status 0 and the route (copied), or status < 0 (SMTPC_ECANCELED, SMTPC_ENOMEM, SMTPC_EDNS)
 * with route NULL: the domain's addresses are reported as a DNS failure. */
SMTPC_API int smtpc_plan_resolved(smtpc_plan *p, uint64_t now, uint64_t token, int status,
                                  const smtpc_route *route);
/* A catch-all answer the driver remembers (a result cache): the domain of the RESOLVE with
 * this token is (1) or is not (0) catch-all, and gets no probe RCPT this run. Give it before
 * the route. */
SMTPC_API int smtpc_plan_catch_all(smtpc_plan *p, uint64_t token, int catch_all);
/* What the run learnt of that domain: 1 or 0 (catch-all or not), -1 not yet, -2 nothing and
 * nothing to come (its probes are spent, its route failed, the run was canceled); or
 * SMTPC_EINVAL. A driver keeping a cache asks after sessions close: the answer may come after
 * the domain's last result. */
SMTPC_API int smtpc_plan_catch_all_of(const smtpc_plan *p, uint64_t token);
SMTPC_API int smtpc_plan_connected(smtpc_plan *p, uint64_t now, unsigned sid);
/* Plain text from the server (after TLS decryption). */
SMTPC_API int smtpc_plan_read(smtpc_plan *p, uint64_t now, unsigned sid, const char *buf,
                              size_t len);
/* The handshake asked for by START_TLS succeeded (ok = 1) or failed. */
SMTPC_API int smtpc_plan_tls(smtpc_plan *p, uint64_t now, unsigned sid, int ok);
/* The connection failed to open, broke, or the peer closed it (err SMTPC_ECLOSED,
 * SMTPC_ETLS ...; detail: static text or NULL, e.g. "connection refused"). */
SMTPC_API int smtpc_plan_eof(smtpc_plan *p, uint64_t now, unsigned sid, int err,
                             const char *detail);
/* The driver has let go of sid (after CLOSE, or on its own after eof): the slot and the
 * host's session count are free again. */
SMTPC_API int smtpc_plan_released(smtpc_plan *p, uint64_t now, unsigned sid);

/* The next action, 1; or 0 when there is nothing to do before the last WAKE. */
SMTPC_API int smtpc_plan_next(smtpc_plan *p, uint64_t now, smtpc_plan_action *out);
/* The scheduling pass (sessions to start, timers and deadlines due, delayed retries): call
 * it when the WAKE's time comes. Calling it early or twice does no harm: the WAKE is handed
 * out again by the next smtpc_plan_next. */
SMTPC_API void smtpc_plan_tick(smtpc_plan *p, uint64_t now);

typedef struct smtpc_plan_stats {
  size_t pending;            /* added, not yet reported                                     */
  size_t sessions;           /* slots in use (open or closing)                               */
  uint64_t sessions_opened;  /* CONNECT actions so far                                       */
  uint64_t results;          /* RESULT actions so far                                        */
  size_t memory;             /* octets held through opts.alloc now, and at most so far        */
  size_t memory_peak;
} smtpc_plan_stats;
SMTPC_API void smtpc_plan_stats_get(const smtpc_plan *p, smtpc_plan_stats *out);
/* 1 once smtpc_plan_end was given and every address is reported. */
SMTPC_API int smtpc_plan_done(const smtpc_plan *p);
/* SMTPC-END: plan */
/* SOCKS5 (socks.c) -- section owned by the proxy module.                                     */
/* SMTPC-SECTION: socks */
/* A SOCKS5 client handshake (RFC 1928, CONNECT only; username/password per RFC 1929) as a
 * machine without I/O, like the dialog: proxy bytes in, bytes to send out. A driver connects
 * to the proxy, runs the machine until it reports the tunnel open, then starts the dialog on
 * the same connection with the bytes the machine did not use. */

typedef struct smtpc_proxy {
  int remote_dns;   /* socks5h: the proxy resolves host names (we send the MX name)         */
  int auth;         /* user and pass are set                                                */
  char user[256];   /* percent-decoded, 1..255 octets                                       */
  char pass[256];
  char host[256];   /* the proxy: a name, an IPv4 address or an IPv6 address (no brackets)  */
  int port;         /* 1080 when the URL has none                                           */
} smtpc_proxy;

/* Parse "socks5://[user:pass@]host[:port]" or "socks5h://...". Returns 0 or SMTPC_EINVAL. */
SMTPC_API int smtpc_proxy_parse(const char *url, size_t len, smtpc_proxy *out);

typedef struct smtpc_socks smtpc_socks;

/* A handshake asking proxy to CONNECT to target (an IPv4/IPv6 address text, or a host name
 * of at most 255 octets sent for the proxy to resolve) at port. The greeting is ready in the
 * output at once. NULL with *err = SMTPC_EINVAL or SMTPC_ENOMEM. */
SMTPC_API smtpc_socks *smtpc_socks_new(const smtpc_proxy *proxy, const char *target, int port,
                                       int *err);
SMTPC_API void smtpc_socks_free(smtpc_socks *s);
/* Proxy bytes. *used gets how many were the handshake's; the rest (a banner sent at once)
 * belongs to the tunnel. Returns 1 when the tunnel is open, 0 when more bytes are needed, or
 * the sticky error: SMTPC_EPROXYAUTH (method or credentials refused), SMTPC_EPROXYDENIED,
 * SMTPC_EPROXYUNREACH, SMTPC_EPROXYREFUSED, SMTPC_EPROXYTTL (reply codes 2-6), SMTPC_EPROXY
 * (general failure, unsupported, malformed). */
SMTPC_API int smtpc_socks_feed(smtpc_socks *s, const char *buf, size_t len, size_t *used);
/* The proxy closed the connection: SMTPC_EPROXYCLOSED unless the tunnel was open (0) or the
 * handshake had already failed (that error). */
SMTPC_API int smtpc_socks_eof(smtpc_socks *s);
/* Bytes to send; take them all, then consume. */
SMTPC_API const char *smtpc_socks_output(const smtpc_socks *s, size_t *len);
SMTPC_API void smtpc_socks_consume(smtpc_socks *s);
/* 1 open, 0 in progress, < 0 the error; and a static sentence about a failure (or NULL). */
SMTPC_API int smtpc_socks_state(const smtpc_socks *s);
SMTPC_API const char *smtpc_socks_detail(const smtpc_socks *s);
/* SMTPC-END: socks */
/* Bounce messages (bounce*.c) -- section owned by the bounce parser.                         */
/* SMTPC-SECTION: bounce */
/*
 * Bytes of one mail message in (LF, CRLF or CR line ends), one record per recipient out:
 * RFC 3464/6522 delivery-status notifications, the common non-standard bounce bodies (Postfix,
 * Exim, Sendmail, qmail, Exchange, Gmail, Amazon SES ...), RFC 5965 ARF reports (kind
 * "feedback") and RFC 3834 auto-replies (kind "autoreply"). A message that is none of these
 * gives no records. Pure: no I/O; reading mbox/Maildir files is the caller's (bindings') job.
 * Memory is bounded: a message is held up to max_message octets; beyond that its tail is
 * dropped with a note (the bounce's own text comes first; the tail is the returned message).
 */
/* Record fields, in the order bindings show them: (ID, "name"). All are UTF-8 text. */
#define SMTPC_BOUNCE_FIELD_MAP(XX)                 \
  XX(KIND, "kind")                 /* "bounce", "feedback", "autoreply" */ \
  XX(RECIPIENT, "recipient")                       \
  XX(ORIGINAL_RECIPIENT, "original_recipient") /* as the sender wrote it, when alias  \
                                      expansion or forwarding made another recipient */ \
  XX(ACTION, "action")             /* failed delayed delivered relayed expanded */ \
  XX(STATUS, "status")             /* "5.1.1" */   \
  XX(DIAGNOSTIC, "diagnostic")     /* the remote server's text, unfolded */ \
  XX(DIAGNOSTIC_TYPE, "diagnostic_type") /* "SMTP", "X-Postfix" ... */ \
  XX(COMMAND, "command")           /* "RCPT", "DATA", "MAIL" ... */ \
  XX(RHOST, "rhost")               /* remote MTA */ \
  XX(REPORTING_MTA, "reporting_mta")               \
  XX(ARRIVAL_DATE, "arrival_date")                 \
  XX(LAST_ATTEMPT, "last_attempt")                 \
  XX(ORIGINAL_MESSAGE_ID, "original_message_id")   \
  XX(ORIGINAL_SUBJECT, "original_subject")         \
  XX(ORIGINAL_FROM, "original_from")               \
  XX(ORIGINAL_TO, "original_to")                   \
  XX(FEEDBACK_TYPE, "feedback_type") /* ARF: "abuse", "fraud" ... */ \
  XX(MTA, "mta")                   /* format recognised: "rfc3464", "postfix" ... */ \
  XX(NOTE, "note")                 /* what was skipped: "part 3: bad base64 at offset 812" */

enum smtpc_bounce_field {
#define SMTPC__XX(id, name) SMTPC_BOUNCE_F_##id,
  SMTPC_BOUNCE_FIELD_MAP(SMTPC__XX)
#undef SMTPC__XX
  SMTPC_BOUNCE_NFIELDS
};

/* "recipient" for SMTPC_BOUNCE_F_RECIPIENT; NULL out of range. */
SMTPC_API const char *smtpc_bounce_field_name(int field);

typedef struct smtpc_bounce {
  const char *field[SMTPC_BOUNCE_NFIELDS]; /* NUL-terminated, NULL when absent; owned by the
                                              parser, valid until its next reset/free       */
  int reply_code;                          /* 0 when none                                   */
  smtpc_class cls;                         /* the diagnostic classified (command, rhost as
                                              context); reason "feedback"/"vacation" for
                                              those kinds                                   */
} smtpc_bounce;

#define SMTPC_BOUNCE_MAX_MESSAGE_DEFAULT (8u << 20) /* octets of one message held           */
#define SMTPC_BOUNCE_MAX_LINE_DEFAULT    65536      /* octets a line                        */
#define SMTPC_BOUNCE_MAX_HEADERS_DEFAULT 1000       /* header fields per message or part    */
#define SMTPC_BOUNCE_MAX_PARTS_DEFAULT   256        /* MIME parts per message               */
/* Nesting of multiparts and returned messages. Each returned message adds one or two levels, so
 * a bounce of a bounce of a forwarded notice goes deep; Postfix allows 100 (mime_nesting_limit).
 * Each level scans what is left of the message for its boundary, so the bound is kept at 32:
 * at most 32 passes over max_message octets. */
#define SMTPC_BOUNCE_MAX_DEPTH_DEFAULT   32
#define SMTPC_BOUNCE_MAX_RECORDS_DEFAULT 10000      /* records per message                  */

typedef struct smtpc_bounce_limits {  /* 0 = default for every field */
  size_t max_message, max_line, max_headers, max_parts, max_depth, max_records;
} smtpc_bounce_limits;

typedef struct smtpc_bounce_parser smtpc_bounce_parser;

/* NULL limits = defaults. NULL when out of memory. One parser is reused for many messages. */
SMTPC_API smtpc_bounce_parser *smtpc_bounce_new(const smtpc_bounce_limits *limits);
SMTPC_API void smtpc_bounce_free(smtpc_bounce_parser *p);
/* Start a new message (records and notes of the last one are dropped; memory is kept). */
SMTPC_API void smtpc_bounce_reset(smtpc_bounce_parser *p);
/* Append bytes of the current message. Returns 0, SMTPC_ENOMEM, or the sticky limit error. */
SMTPC_API int smtpc_bounce_feed(smtpc_bounce_parser *p, const char *buf, size_t len);
/* The message is complete: parse it. Returns the number of records (>= 0) or a negative
 * SMTPC_E* error (limits: SMTPC_EMSGLINE, SMTPC_ETOOMANYHEADERS, SMTPC_ETOOMANYPARTS,
 * SMTPC_ETOODEEP; smtpc_bounce_error gives the offset in the message). */
SMTPC_API int smtpc_bounce_finish(smtpc_bounce_parser *p);
/* reset + feed + finish, msg read in place (not copied; the records do not point into it). */
SMTPC_API int smtpc_bounce_parse(smtpc_bounce_parser *p, const char *msg, size_t len);
/* Record i of the last finished message; NULL out of range. */
SMTPC_API const smtpc_bounce *smtpc_bounce_record(const smtpc_bounce_parser *p, size_t i);
SMTPC_API size_t smtpc_bounce_count(const smtpc_bounce_parser *p);
/* The error of the last feed/finish (0 when none) and the message offset where it was found. */
SMTPC_API int smtpc_bounce_error(const smtpc_bounce_parser *p, uint64_t *offset);

/* mbox splitting (pure): feed the bytes of an mbox (mboxo or mboxrd) in any chunks; each call
 * returns the next complete message, ">From " quoting undone for mboxrd. */
typedef struct smtpc_mbox smtpc_mbox;
SMTPC_API smtpc_mbox *smtpc_mbox_new(void);
SMTPC_API void smtpc_mbox_free(smtpc_mbox *mb);
/* Append bytes; eof = 1 after the last chunk. Returns 0 or SMTPC_ENOMEM. */
SMTPC_API int smtpc_mbox_feed(smtpc_mbox *mb, const char *buf, size_t len, int eof);
/* 1 = *msg and *len hold the next message (valid until the next feed/next), 0 = need more. */
SMTPC_API int smtpc_mbox_next(smtpc_mbox *mb, const char **msg, size_t *len);
/* SMTPC-END: bounce */

#ifdef __cplusplus
}
#endif
#endif /* SMTPCODE_H */
