/* bounce_mta_simple.c -- bounces that list "<recipient>:" lines followed by the server's words
 * between a start sentence and a boundary line: qmail, Yahoo, DragonFly Mail Agent, OpenSMTPD,
 * X2-style ("Unable to deliver message to the following address(es)") and others. Each format
 * is a row of data: how to know it, where its list starts and stops. */
#include <string.h>

#include "bounce_mta.h"

typedef struct simple_format {
  const char *const *from;     /* From: contains one of these (NULL: not checked)          */
  const char *const *body;     /* the body contains one of these (required)                */
  smtpc__bmta_layout layout;
  const char *hdr;             /* and this header field ...                                */
  const char *const *hdr_has;  /* ... contains one of these (NULL: not checked)            */
  int fresh_only;              /* a DSN part, when there is one, says more: leave it be    */
  const char *greeting;        /* the line that names the reporting host: "<greeting> ...
                                  at HOST." (NULL: none)                                   */
} simple_format;

/* The reporting MTA as the greeting names it ("Hi. This is the qmail-send program at
 * mx.example.jp.", "This is the DragonFly Mail Agent v0.13 at df.example.jp."): the word after
 * the line's " at ", its closing full stop dropped, given to every record that has none. */
static int greeting_host(smtpc__bmsg *m, const char *greeting) {
  const char *g = smtpc__bfind(m->body, m->body_len, greeting), *end = m->body + m->body_len;
  if (!g) return 0;
  const char *eol = smtpc__bchr(g, (size_t)(end - g), '\n');
  if (!eol) eol = end;
  const char *at = smtpc__bfind(g, (size_t)(eol - g), " at ");
  if (!at) return 0;
  const char *h = at + 4, *e = h;
  while (e < eol && smtpc__bhost_char((unsigned char)*e)) e++;
  while (e > h && e[-1] == '.') e--;
  if (e == h || !smtpc__bchr(h, (size_t)(e - h), '.')) return 0;  /* a name with a dot only */
  for (size_t i = 0; i < m->nrecords; i++) {
    smtpc_bounce *r = smtpc__bounce_rec(m, i);
    int rc;
    if (!r->field[SMTPC_BOUNCE_F_REPORTING_MTA] &&
        (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_REPORTING_MTA, h, (size_t)(e - h))) != 0)
      return rc;
  }
  return 0;
}

static int simple(smtpc__bmsg *m, const simple_format *f) {
  if (f->fresh_only && m->nrecords > 0) return 0;
  if (f->from && !smtpc__bmta_hdr_has(m, "From", f->from)) return 0;
  if (f->hdr && !smtpc__bmta_hdr_has(m, f->hdr, f->hdr_has)) return 0;
  if (!smtpc__bmta_any(m->body, m->body_len, f->body)) return 0;
  int n = smtpc__bmta_read(m, m->body, m->body_len, &f->layout), rc;
  if (n > 0 && f->greeting && (rc = greeting_host(m, f->greeting)) != 0) return rc;
  return n;
}

#define MARKS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* qmail-send (and netqmail, indimail):
 *   Hi. This is the qmail-send program at mx.example.jp.
 *   I'm afraid I wasn't able to deliver your message to the following addresses.
 *   <kijitora@example.jp>:
 *   192.0.2.25 does not like recipient.
 *   Remote host said: 550 5.1.1 <kijitora@example.jp>: Recipient address rejected
 *   --- Below this line is a copy of the message. */
static const simple_format qmail = {
    .from = NULL,
    .body = MARKS("This is the qmail-send program", "qmail-send program at",
                  "wasn't able to deliver your message to the following addresses"),
    .layout = {.start = MARKS("to the following addresses", "following recipients"),
               .stop = MARKS("--- Below this line is a copy", "--- Enclosed is a copy",
                             "--- Enclosed are the original", "--- Below the next line is a copy"),
               .need_angle = 1},
    .greeting = "This is the qmail-send program at"};
int smtpc__bmta_qmail(smtpc__bmsg *m) { return simple(m, &qmail); }

/* qmail reworded: providers running qmail replace its greeting ("This is the mail delivery
 * agent at messagelabs.com.", "Unfortunately, your mail was not delivered to the following
 * address:", "He/Her is not HBC e-mail users.", "Hi. The MTA program at mta6-1.us4.outblaze.com
 * was unable to deliver", GoDaddy's "We're sorry. There's a problem with the e-mail
 * address(es)") but keep its skeleton: "<recipient>:" paragraphs, then qmail's boundary line.
 * Tried after every named format, so the boundary and the "<x@y>:" lines are the whole test. */
static const simple_format qmail_reworded = {
    .from = NULL,
    .body = MARKS("--- Below this line is a copy of the message",
                  "--- Below the next line is a copy of the message",
                  "--- Enclosed is a copy of the message"),
    .layout = {.start = MARKS(""),
               .stop = MARKS("--- Below this line is a copy", "--- Enclosed is a copy",
                             "--- Below the next line is a copy"),
               .need_angle = 1},
    .fresh_only = 1};
int smtpc__bmta_qmail_reworded(smtpc__bmsg *m) { return simple(m, &qmail_reworded); }

/* qmail's clones (vpopmail and ISP builds, Sisimai's Lhost::X4) end the report with "---
 * Original message follows." instead of qmail's line, under greetings of their own ("He/Her is
 * not a registered user", "Su mensaje no pudo ser entregado", "We're sorry."). That line closes
 * other notices too (a "<addr>" list without qmail's colon, read by the generic reader), so
 * only a message that qmail's own headers mark is read here: its "Received: (qmail 123 invoked
 * for bounce)", or qmail's Subject, "failure notice" or "Permanent Delivery Failure". */
static const simple_format qmail_clone = {
    .from = NULL,
    .body = MARKS("--- Original message follows."),
    /* some clones write "To: <kijitora@example.jp>:" for qmail's "<kijitora@example.jp>:" (a form
     * Sisimai's Lhost::X4 reads too); only here, where qmail's headers vouch for the layout */
    .layout = {.start = MARKS(""), .stop = MARKS("--- Original message follows."), .need_angle = 1,
               .to_prefix = 1},
    .fresh_only = 1};
int smtpc__bmta_qmail_clone(smtpc__bmsg *m) {
  if (!smtpc__bmta_hdr_has(m, "Received", MARKS("invoked for bounce")) &&
      !smtpc__bmta_hdr_has(m, "Subject", MARKS("failure notice", "Permanent Delivery Failure")))
    return 0;
  return simple(m, &qmail_clone);
}

/* Yahoo (a qmail descendant):
 *   Sorry, we were unable to deliver your message to the following address.
 *   <kijitora@example.org>:
 *   Remote host said: 550 5.1.1 <kijitora@example.org>... User Unknown [RCPT_TO] */
static const simple_format yahoo = {
    .from = NULL,
    .body = MARKS("Sorry, we were unable to deliver your message to the following address"),
    .layout = {.start = MARKS("unable to deliver your message to the following address"),
               .stop = MARKS("--- Below this line is a copy", "--- Original message follows"),
               .need_angle = 1}};
/* Yahoo's notice for a message its own queue gave up on (a multipart/report without a
 * delivery-status part; seen in 2021):
 *   I'm afraid I wasn't able to deliver the following message.
 *   This is a permanent error; I've given up. Sorry it didn't work out.
 *
 *   Subject: subject
 *   To: subscriber@example.com
 *
 *   --- Below this line is a copy of the message.
 * qmail's sentences without qmail's "<rcpt>:" paragraph: the message's To: line, when it holds
 * one address, names who it failed for, and the sentences above it are the words. */
static int yahoo_gave_up(smtpc__bmsg *m) {
  const char *text = m->body, *line, *a;
  size_t len = m->body_len, begin, end, pos, n, al;
  begin = smtpc__bmta_line_with(text, len, MARKS("wasn't able to deliver the following message"));
  if (begin >= len || m->nrecords > 0) return 0;
  end = begin + smtpc__bmta_cut(text + begin, len - begin,
                                MARKS("--- Below this line is a copy", "--- Original message follows"));
  if (end >= len) return 0;  /* no returned message: not this notice */
  const char *to = NULL, *words = text + begin;
  size_t tol = 0, wordsl = 0;
  for (pos = begin; smtpc__bline(text, end, &pos, &line, &n);) {
    const char *t = smtpc__bmta_trim(line, &n);
    if (smtpc__bstarts(t, n, "To:")) {
      if (to) return 0;  /* one To: line only */
      to = t + 3, tol = n - 3;
    } else if (!to && !wordsl && n == 0) {
      wordsl = (size_t)(line - words);  /* the sentences end at the first empty line */
    }
  }
  if (!to || !smtpc__baddr(to, tol, &a, &al) || memchr(a + al, '@', tol - (size_t)(a + al - to)))
    return 0;  /* none, or several addresses: which one failed is not said */
  if (!wordsl) wordsl = (size_t)(to - words);
  smtpc_bounce *r = smtpc__bounce_add(m);
  if (!r) return smtpc__bounce_add_failed(m);
  int rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, a, al), multi = 0;
  for (pos = 0; !rc && smtpc__bline(words, wordsl, &pos, &line, &n);)
    if (n) rc = smtpc__bmta_diag_line(m, r, line, n, &multi);
  if (!rc) rc = smtpc__bmta_finish_rec(m, r);
  return rc ? rc : 1;
}

int smtpc__bmta_yahoo(smtpc__bmsg *m) {
  int n = simple(m, &yahoo);
  return n ? n : yahoo_gave_up(m);
}

/* DragonFly Mail Agent (dma):
 *   There was an error delivering your mail to <kijitora@example.com>.
 *   mx.example.com [192.0.2.25] did not like our RCPT TO:
 *   550 5.1.1 <kijitora@example.com>: Recipient address rejected: User unknown
 *   Original message follows. */
static const simple_format dragonfly = {
    .from = NULL,
    .body = MARKS("DragonFly Mail Agent", "There was an error delivering your mail to"),
    .layout = {.start = MARKS("There was an error delivering your mail to"),
               .stop = MARKS("Original message follows", "Message headers follow"),
               .rcpt_in_start = 1,
               .need_angle = 1},
    .greeting = "This is the DragonFly Mail Agent"};
int smtpc__bmta_dragonfly(smtpc__bmsg *m) { return simple(m, &dragonfly); }

/* OpenSMTPD:
 *   An error has occurred while attempting to deliver a message for
 *   the following list of recipients:
 *   kijitora@example.jp: 550 5.2.2 <kijitora@example.jp>... Mailbox Full
 *   Below is a copy of the original message:
 * and its first layout (smtpd/bounce.c until 2012), one recipient per notice:
 *   An error has occurred while attempting to deliver a message.
 *   Recipient: kijitora@example.jp
 *   Reason:
 *   550 5.2.2 <kijitora@example.jp>... Mailbox Full */
static const simple_format opensmtpd = {
    .from = NULL,
    .body = MARKS("This is the MAILER-DAEMON, please DO NOT REPLY",
                  "while attempting to deliver a message for the following list of recipients",
                  "the following list of recipients:", "list of recipients:"),
    .layout = {.start = MARKS("following list of recipients", "list of recipients:",
                              "while attempting to deliver a message."),
               .stop = MARKS("Below is a copy of the original message",
                             "Please note that this is only a temporary failure")}};
int smtpc__bmta_opensmtpd(smtpc__bmsg *m) { return simple(m, &opensmtpd); }

/* hMailServer (SEND_FAILED_NOTIFICATION, Exchange's sentences), each recipient followed by
 * what its SMTP client saw:
 *   The following recipient(s) could not be reached:
 *   kijitora@example.com
 *      Error Type: SMTP
 *      Remote server (192.0.2.1) issued an error.
 *      hMailServer sent: RCPT TO:<kijitora@example.com>
 *      Remote server replied: 550 5.1.1 <kijitora@example.com>: User unknown */
static const simple_format hmailserver = {
    .from = NULL,
    .body = MARKS("Remote server replied:"),
    .layout = {.start = MARKS("could not be reached:"),
               .stop = MARKS("--- Original message", "Original message headers")},
    .fresh_only = 1};
int smtpc__bmta_hmailserver(smtpc__bmsg *m) { return simple(m, &hmailserver); }

/* GroupWise (GWIA): one line per recipient, its reason in parentheses after it.
 *   The message that you sent was undeliverable to the following:
 *   	kijitora@example.jp (User not on post office)
 *   Possibly truncated original message follows: */
static const simple_format groupwise = {
    .from = NULL,
    .body = MARKS("undeliverable to the following:"),
    .layout = {.start = MARKS("undeliverable to the following:"),
               .stop = MARKS("Possibly truncated original message", "Information about your message",
                             "--- Original message"),
               .rcpt_space = 1},
    .fresh_only = 1};
int smtpc__bmta_groupwise(smtpc__bmsg *m) {
  int n = simple(m, &groupwise), rc;
  for (size_t i = 0; n > 0 && i < m->nrecords; i++) {  /* "(User not on post office)" */
    smtpc_bounce *r = smtpc__bounce_rec(m, i);
    const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
    size_t dl = d ? strlen(d) : 0;
    if (dl > 2 && d[0] == '(' && d[dl - 1] == ')' && !memchr(d + 1, '(', dl - 2) &&
        (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, d + 1, dl - 2)) != 0)
      return rc;
    /* GroupWise's own words for an unknown user (its directory is the "post office") */
    if (d && smtpc__bfind(d, dl, "not on post office")) r->cls.reason = SMTPC_REASON_USERUNKNOWN;
  }
  return n;
}

/* The "X2" family (old webmail MTAs):
 *   Message from example.com.
 *   Unable to deliver message to the following address(es).
 *   <kijitora@example.com>:
 *   This user doesn't have a example.com account (kijitora@example.com) [0] */
static const simple_format x2 = {
    .from = NULL,
    .body = MARKS("Unable to deliver message to the following address(es)"),
    .layout = {.start = MARKS("Unable to deliver message to the following address"),
               .stop = MARKS("--- Original message follows", "--- Below this line"),
               .need_angle = 1}};
int smtpc__bmta_x2(smtpc__bmsg *m) { return simple(m, &x2); }

/* GMX (an Exim relative without the indentation):
 *   The following address
 *   failed:
 *   "kijitora@example.jp":
 *   SMTP error from remote server after RCPT command:
 *   host: mx.example.jp
 *   5.1.1 <kijitora@example.jp>... User Unknown
 *   --- The header of the original message is following. --- */
static const simple_format gmx = {
    .from = NULL,
    .body = MARKS("--- The header of the original message is following"),
    .layout = {.start = MARKS("could not be delivered to one or more of"),
               .stop = MARKS("--- The header of the original message")}};
int smtpc__bmta_gmx(smtpc__bmsg *m) { return simple(m, &gmx); }

/* 1&1 (einsundeins): "The following address failed:" / bare address / "For the following
 * reason:" / the reason. Its boundary is GMX's; its wording is its own. */
static const simple_format einsundeins = {
    .from = NULL,
    .body = MARKS("For the following reason:"),
    .layout = {.start = MARKS("The following address failed", "The following addresses failed"),
               .stop = MARKS("--- The header of the original message")}};
int smtpc__bmta_einsundeins(smtpc__bmsg *m) { return simple(m, &einsundeins); }

/* MXLogic (McAfee) writes Exim's sentence with "<rcpt>: reply" lines. */
static const simple_format mxlogic = {
    .from = NULL,
    .body = MARKS("The following address failed:", "The following addresses failed:"),
    .layout = {.start = MARKS("The following address failed:", "The following addresses failed:"),
               .stop = MARKS("Included is a copy of the message header", "------ This is a copy"),
               .need_angle = 1}};
int smtpc__bmta_mxlogic(smtpc__bmsg *m) { return simple(m, &mxlogic); }

/* au (EZweb): the sentence may come before or after "<rcpt>"; both explain it.
 *   Each of the following recipients was rejected by a remote mail server.
 *       Recipient: <kijitora@ezweb.ne.jp>
 *       >>> RCPT TO:<kijitora@ezweb.ne.jp>
 *       <<< 550 <kijitora@ezweb.ne.jp>: User unknown */
/* (au moved its mail from ezweb.ne.jp to au.com in 2018: Postmaster@au.com writes the same
 * notices; their rule may be 50 dashes long.) */
static const simple_format ezweb = {
    .from = MARKS("ezweb.ne.jp", "@au.com"),
    .body = MARKS("recipients was rejected by", "did not receive this message",
                  "account is disabled", "Recipient:", "was not delivered within"),
    .layout = {.start = MARKS(""),
               .stop = MARKS("--------------------------------------------------",
                             "--- Original message"),
               .need_angle = 1,
               .preamble = 1}};
/* au's sentences decide what happened when the remote server's reply does not (or says less:
 * a disabled account answers "550 user unknown"). */
static const struct {
  const char *sentence;
  int reason, even_with_reply;
} ezweb_reasons[] = {
    {"account is disabled", SMTPC_REASON_SUSPEND, 1},
    {"was not delivered within", SMTPC_REASON_EXPIRED, 0},
    {"recipients was rejected by a remote mail server", SMTPC_REASON_FILTERED, 0},
};

int smtpc__bmta_ezweb(smtpc__bmsg *m) {
  int n = simple(m, &ezweb);
  for (size_t i = 0; n > 0 && i < m->nrecords; i++) {
    smtpc_bounce *r = smtpc__bounce_rec(m, i);
    const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC];
    if (!d) continue;
    size_t dl = strlen(d);
    for (size_t k = 0; k < sizeof ezweb_reasons / sizeof ezweb_reasons[0]; k++)
      if (smtpc__bfind(d, dl, ezweb_reasons[k].sentence) &&
          (ezweb_reasons[k].even_with_reply || !r->reply_code)) {
        r->cls.reason = ezweb_reasons[k].reason;
        break;
      }
  }
  return n;
}

/* KDDI (au's older gateway):
 *   Your mail sent on: Thu, 29 Apr 2013 00:00:00 +0900
 *        Could not be delivered to: <kijitora@example.dion.ne.jp>
 *        As their mailbox is full. */
static const simple_format kddi = {
    .from = NULL,
    .body = MARKS("Could not be delivered to:"),
    .layout = {.start = MARKS("Your mail sent on", "Could not be delivered to:"),
               .stop = MARKS("--- Original message"),
               .need_angle = 1}};
int smtpc__bmta_kddi(smtpc__bmsg *m) { return simple(m, &kddi); }

/* X3-style notices framed by "=====" rules:
 *   Delivery to the following recipients failed permanently:
 *      * kijitora@example.com
 *   Technical details:
 *   SMTP:RCPT host 192.0.2.8: 553 5.3.0 <kijitora@example.com>... No such user here */
static const simple_format x3 = {
    .from = NULL,
    .body = MARKS("This is an automatically generated Delivery Status Notification"),
    /* "failed permanently": the Windows SMTP service opens its DSN's text with the same sentence
     * and "Delivery to the following recipients failed." then bare addresses, and whatever
     * follows them there is the sender's footer, not words (its DSN part says why) */
    .layout = {.start = MARKS("to the following recipients failed permanently"),
               .stop = MARKS("--- Original message")}};
int smtpc__bmta_x3(smtpc__bmsg *m) { return simple(m, &x3); }

/* Active!hunter: Sendmail's headings, ">>> rcpt <rcpt>" lines, the transcript below them. */
static const simple_format activehunter = {
    .from = NULL,
    .body = MARKS("----- The following addresses had permanent fatal errors -----"),
    .layout = {.start = MARKS("The following addresses had permanent fatal errors"),
               .stop = MARKS("--- Original message")},
    .hdr = "Content-Type",
    .hdr_has = MARKS("Active!Hunter")};
int smtpc__bmta_activehunter(smtpc__bmsg *m) { return simple(m, &activehunter); }

/* Zoho: "rcpt Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 <rcpt>... User Unknown" */
static const simple_format zoho = {
    .from = MARKS("zoho.com"),
    .body = MARKS("could not be delivered to one or more of its"),
    .layout = {.start = MARKS("could not be delivered to one or more of its"),
               .stop = MARKS("Received:"),
               .rcpt_space = 1}};
int smtpc__bmta_zoho(smtpc__bmsg *m) {
  size_t first = m->nrecords;
  int n = simple(m, &zoho);
  for (size_t i = first; n > 0 && i < m->nrecords; i++) {  /* "ERROR_CODE :550" */
    smtpc_bounce *r = smtpc__bounce_rec(m, i);
    const char *d = r->field[SMTPC_BOUNCE_F_DIAGNOSTIC], *e;
    if (d && (e = strstr(d, "ERROR_CODE :")) != NULL)
      r->reply_code = smtpc__bmta_code_at(e + 12, 3);
  }
  return n;
}

/* Lotus Notes (Domino's SMTP MTA):
 *   ------- Failure Reasons  --------
 *   User  not listed in public Name & Address Book
 *   kijitora@example.com
 *   ------- Returned Message -------- */
static const simple_format notes = {
    .from = NULL,
    .body = MARKS("------- Failure Reasons"),
    .layout = {.start = MARKS("------- Failure Reasons"),
               .stop = MARKS("------- Returned Message"),
               .preamble = 1}};
int smtpc__bmta_notes(smtpc__bmsg *m) { return simple(m, &notes); }

/* Sendmail-like headings without Sendmail's DSN part (BIGLOBE, X1 and others):
 *   ----- The following addresses had delivery problems -----
 *   kijitora@example.org [User unknown]
 *   ----- Non-delivered information -----
 *   The number of messages in recipient's mailbox exceeded the local limit. */
static const simple_format headings = {
    .from = NULL,
    .body = MARKS("The following addresses had delivery problems",
                  "The following addresses had delivery errors"),
    .layout = {.start = MARKS("The following addresses had delivery"),
               .stop = MARKS("--- Original message", "----- Unsent message"),
               .rcpt_space = 1},
    .fresh_only = 1};
int smtpc__bmta_headings(smtpc__bmsg *m) { return simple(m, &headings); }

/* Lotus Domino:
 *   Your message
 *     Subject: Test Bounce
 *   was not delivered to:
 *     kijitora@example.jp
 *   because:
 *     User some.name (kijitora@example.jp) not listed in Domino Directory */
static const simple_format domino = {
    .from = NULL,
    .body = MARKS("was not delivered to:"),
    .layout = {.start = MARKS("was not delivered to:"), .stop = MARKS("--- Original message")},
    .fresh_only = 1};
int smtpc__bmta_domino(smtpc__bmsg *m) { return simple(m, &domino); }

/* MailFoundry:
 *   Unable to deliver message to: <kijitora@example.org>
 *   Delivery failed for the following reason:
 *   Server mx22.example.org[192.0.2.222] failed with: 550 <kijitora@example.org> No such user */
static const simple_format mailfoundry = {
    .from = NULL,
    .body = MARKS("Delivery failed for the following reason:"),
    .layout = {.start = MARKS("Unable to deliver message to:"),
               .stop = MARKS("--- Original message")},
    .fresh_only = 1};
int smtpc__bmta_mailfoundry(smtpc__bmsg *m) { return simple(m, &mailfoundry); }

/* Smail 3's framed log (notify.c), and Deutsche Telekom's (T-Online's) notices in its layout,
 * which return only the message's header:
 *   |------------------------- Message log follows: -------------------------|
 *    no valid recipients were found for this message
 *   |------------------------- Failed addresses follow: ---------------------|
 *    kijitora@example.com ... unknown host
 *   |------------------------- Message text follows: ------------------------|
 * (T-Online: " <x@t-online.de>", its reply on the next line, then "Message header follows") */
static const simple_format framedlog = {
    .from = NULL,
    .body = MARKS("------- Failed addresses follow:"),
    .layout = {.start = MARKS("------- Message log follows:", "------- Failed addresses follow:"),
               .stop = MARKS("|------------------------- Message text follows",
                             "|------------------------- Message header follows"),
               .preamble = 1,
               .rcpt_space = 1},
    .fresh_only = 1};
int smtpc__bmta_framedlog(smtpc__bmsg *m) { return simple(m, &framedlog); }

/* Trend Micro InterScan:
 *   Message from InterScan Messaging Security Suite
 *   Unable to deliver message to <kijitora@example.jp> (and other recipients in the same
 *   domain). */
static const simple_format interscan = {
    .from = NULL,
    .body = MARKS("Message from InterScan Messaging Security Suite"),
    .layout = {.start = MARKS("Unable to deliver message to <"),
               .stop = MARKS("*****"),
               .rcpt_in_start = 1,
               .start_is_words = 1},
    .fresh_only = 1};

/* InterScan's other notice quotes the SMTP exchange that failed, an arrow between the word and
 * the text (Sisimai's InterScanMSS module reads the same lines; the Japanese notice turns the
 * arrows round):
 *   Sent <<< RCPT TO:<kijitora@example.co.jp>
 *   Received >>> 550 5.1.1 <kijitora@example.co.jp>... user unknown
 * A command line names the command of the next reply (RCPT TO its recipient too); a refusal
 * (4xx, 5xx) after it is that recipient's record and words, or, after no RCPT TO, those of the
 * address the refusal names (not after MAIL FROM: that one is the sender). A reply that
 * accepts clears what the command named. */
static const char *arrow_text(const char *t, size_t n, size_t *rest) {
  const char *a = smtpc__bfind(t, n, "<<< ");
  const char *b = smtpc__bfind(t, n, ">>> ");
  if (!a || (b && b < a)) a = b;
  if (!a || (a > t && a[-1] != ' ' && a[-1] != '\t')) return NULL;
  *rest = n - (size_t)(a + 4 - t);
  return a + 4;
}

static int interscan_transcript(smtpc__bmsg *m) {
  static const char *const cmds[] = {"RCPT", "MAIL", "DATA", "EHLO", "HELO"};
  size_t pos = 0, n, first = m->nrecords, rl = 0;
  const char *line, *cmd = NULL, *rcpt = NULL;
  int rc, found = 0;
  while (smtpc__bline(m->body, m->body_len, &pos, &line, &n)) {
    size_t tl, al;
    const char *t = arrow_text(line, n, &tl), *a;
    if (!t) continue;
    t = smtpc__bmta_trim(t, &tl);
    int code = smtpc__bmta_code_at(t, tl);
    if (code) { /* the server's reply */
      if (code >= 400 && !rcpt && !(cmd && cmd[0] == 'M') && smtpc__baddr(t, tl, &a, &al))
        rcpt = a, rl = al;
      if (code >= 400 && rcpt) {
        smtpc_bounce *r = smtpc__bmta_find_from(m, first, rcpt, rl);
        if (!r) {
          if (!(r = smtpc__bounce_add(m))) return smtpc__bounce_add_failed(m);
          found++;
          if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_RECIPIENT, rcpt, rl)) != 0) return rc;
        }
        if ((rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_DIAGNOSTIC, t, tl)) != 0 ||
            (cmd && (rc = smtpc__bounce_set(m, r, SMTPC_BOUNCE_F_COMMAND, cmd, 4)) != 0) ||
            (rc = smtpc__bmta_finish_rec(m, r)) != 0)
          return rc;
      }
      rcpt = NULL, cmd = NULL;
      continue;
    }
    for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++)
      if (smtpc__bstarts(t, tl, cmds[c])) cmd = cmds[c];
    rcpt = NULL;
    if (cmd && cmd[0] == 'R' && smtpc__baddr(t, tl, &a, &al)) rcpt = a, rl = al;
  }
  return found;
}

int smtpc__bmta_interscanmss(smtpc__bmsg *m) {
  static const char *const from[] = {"InterScan", NULL};
  int n = simple(m, &interscan);
  if (n != 0 || m->nrecords > 0) return n;
  if (!smtpc__bmta_any(m->body, m->body_len, interscan.body) &&
      !smtpc__bmta_hdr_has(m, "From", from))
    return 0;
  return interscan_transcript(m);
}

/* MailMarshal: the reason first, the recipients after it.
 *   Could not be delivered because of
 *   550 5.1.1 User unknown
 *   The following recipients were affected:
 *       kijitora@example.com
 *   Additional Information */
static const simple_format mailmarshal = {
    .from = NULL,
    .body = MARKS("The following recipients were affected:"),
    .layout = {.start = MARKS("Could not be delivered because of"),
               .stop = MARKS("Additional Information"),
               .preamble = 1},
    .fresh_only = 1};
int smtpc__bmta_mailmarshal(smtpc__bmsg *m) { return simple(m, &mailmarshal); }
