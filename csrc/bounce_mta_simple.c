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
} simple_format;

static int simple(smtpc__bmsg *m, const simple_format *f) {
  if (f->from && !smtpc__bmta_hdr_has(m, "From", f->from)) return 0;
  if (!smtpc__bmta_any(m->body, m->body_len, f->body)) return 0;
  return smtpc__bmta_read(m, m->body, m->body_len, &f->layout);
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
    NULL,
    MARKS("This is the qmail-send program", "qmail-send program at",
          "wasn't able to deliver your message to the following addresses"),
    {MARKS("to the following addresses", "following recipients"),
     MARKS("--- Below this line is a copy", "--- Enclosed is a copy", "--- Enclosed are the original",
           "--- Below the next line is a copy"),
     0, 1}};
int smtpc__bmta_qmail(smtpc__bmsg *m) { return simple(m, &qmail); }

/* Yahoo (a qmail descendant):
 *   Sorry, we were unable to deliver your message to the following address.
 *   <kijitora@example.org>:
 *   Remote host said: 550 5.1.1 <kijitora@example.org>... User Unknown [RCPT_TO] */
static const simple_format yahoo = {
    NULL,
    MARKS("Sorry, we were unable to deliver your message to the following address"),
    {MARKS("unable to deliver your message to the following address"),
     MARKS("--- Below this line is a copy", "--- Original message follows"), 0, 1}};
int smtpc__bmta_yahoo(smtpc__bmsg *m) { return simple(m, &yahoo); }

/* DragonFly Mail Agent (dma):
 *   There was an error delivering your mail to <kijitora@example.com>.
 *   mx.example.com [192.0.2.25] did not like our RCPT TO:
 *   550 5.1.1 <kijitora@example.com>: Recipient address rejected: User unknown
 *   Original message follows. */
static const simple_format dragonfly = {
    NULL,
    MARKS("DragonFly Mail Agent", "There was an error delivering your mail to"),
    {MARKS("There was an error delivering your mail to"),
     MARKS("Original message follows", "Message headers follow"), 1, 1}};
int smtpc__bmta_dragonfly(smtpc__bmsg *m) { return simple(m, &dragonfly); }

/* OpenSMTPD:
 *   An error has occurred while attempting to deliver a message for
 *   the following list of recipients:
 *   kijitora@example.jp: 550 5.2.2 <kijitora@example.jp>... Mailbox Full
 *   Below is a copy of the original message: */
static const simple_format opensmtpd = {
    NULL,
    MARKS("This is the MAILER-DAEMON, please DO NOT REPLY",
          "while attempting to deliver a message for the following list of recipients",
          "the following list of recipients:"),
    {MARKS("following list of recipients"), MARKS("Below is a copy of the original message"),
     0, 0}};
int smtpc__bmta_opensmtpd(smtpc__bmsg *m) { return simple(m, &opensmtpd); }

/* The "X2" family (old webmail MTAs):
 *   Message from example.com.
 *   Unable to deliver message to the following address(es).
 *   <kijitora@example.com>:
 *   This user doesn't have a example.com account (kijitora@example.com) [0] */
static const simple_format x2 = {
    NULL,
    MARKS("Unable to deliver message to the following address(es)"),
    {MARKS("Unable to deliver message to the following address"),
     MARKS("--- Original message follows", "--- Below this line"), 0, 1}};
int smtpc__bmta_x2(smtpc__bmsg *m) { return simple(m, &x2); }
