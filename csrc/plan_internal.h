/*
 * plan_internal.h -- shared by the planner's files; not installed. The public part is the
 * "plan" section of smtpcode.h.
 *
 * The planner is the probe's brain with no I/O: events in (an address, a route, bytes, a
 * session's end, the time), actions out (resolve, connect, write, start TLS, close, wake,
 * result). Calls go one way, top to bottom, never back up:
 *   plan.c          the public API: options, events, the action queue's front, scheduling
 *   plan_session.c  sessions: which queued items one takes, its dialog, its timer, its end
 *   plan_decide.c   items and results; what an item's dialog event means (report, hold for
 *                   the catch-all answer, retry, greylist delay, back off or skip its host)
 *   plan_store.c    memory (opts.alloc), the string-keyed table, hosts, domains, groups,
 *                   the action queue's back
 *
 * Shapes:
 *   item     one input address (or a catch-all probe) and the last thing learnt about it;
 *   domain   a recipient domain: its route, and its catch-all state for the run;
 *   group    the addresses whose domains share an MX set: they share sessions;
 *   host     one MX IP address: its session count, pause, backoff, "down" mark;
 *   session  one connection slot (sid) and its dialog.
 *
 * Time is in the driver's microseconds (now), passed with every event.
 */
#ifndef SMTPC_PLAN_INTERNAL_H
#define SMTPC_PLAN_INTERNAL_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAX_ATTEMPTS 4         /* sessions an address may lose before it is reported      */
#define MAX_TEMP_RETRIES 2     /* retries of a 4xx (greylisting) RCPT reply                 */
#define PROBE_TRIES 3          /* catch-all probes a domain may lose or have deferred        */
#define HOST_DOWN_US 60000000u /* a host that refused us is skipped this long (60 s)         */

/* ---------------------------------------------------------------------------------------- */
/* intrusive lists */

typedef struct link {
  struct link *prev, *next;
} link;

#define CONTAINER(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

static inline void l_init(link *h) { h->prev = h->next = h; }
static inline int l_empty(const link *h) { return h->next == h; }
static inline void l_del(link *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}
static inline void l_push(link *h, link *n) {
  n->prev = h->prev;
  n->next = h;
  h->prev->next = n;
  h->prev = n;
}
static inline void l_push_front(link *h, link *n) {
  n->next = h->next;
  n->prev = h;
  h->next->prev = n;
  h->next = n;
}

/* ---------------------------------------------------------------------------------------- */
/* types */

typedef struct saved { /* a reply kept past its read buffer, with its class; shared (refs)
                          by the items of a session that got the very same reply ("250 2.1.5
                          Ok" fifty times), and by a host that failed with it */
  unsigned refs;
  smtpc_reply r;
  smtpc_class cls;        /* the class is a function of the reply and its context (command,
                             host), which a session's items share: kept once, not per item */
  smtpc_span lines[1];
} saved;

enum { IT_NEW, IT_RESOLVING, IT_QUEUED, IT_DELAYED, IT_SESSION, IT_HELD, IT_DONE };
/* A domain's catch-all probe: none sent yet, waiting at the head of its group's queue (accepted
 * addresses of the domain are held for it), sent, or answered (or given up on). */
enum { PROBE_NONE, PROBE_QUEUED, PROBE_INFLIGHT, PROBE_DONE };
enum { D_RESOLVING, D_READY, D_FAILED };
/* A session slot: free, connecting, connected, closed by us (CLOSE sent, awaiting release). */
enum { S_FREE, S_CONNECTING, S_OPEN, S_CLOSING };

struct group;
struct domain;

/* An item is small (120 octets, and its input after it, in one slab block: see
 * smtpc__item_mem): a million of them are pending at once, and each is touched again long
 * after it was last, from cold memory. Its input follows the struct (item_input), then, when
 * it differs from the input, what RCPT TO carries (item_rcpt); a probe has only the latter. */
typedef struct item {
  link q;                 /* the list of its state                                    */
  struct domain *dom;
  saved *reply;           /* the last reply learnt and its class; NULL: none           */
  uint64_t tag;
  uint64_t added;         /* its deadline is added + p->deadline_us                      */
  uint64_t ready_at;
  const char *detail;
  const char *mx, *mx_addr;
  char *transcript;
  size_t input_len;
  uint32_t seq;           /* its slot in p->all, while unreported                       */
  uint32_t transcript_len;
  uint16_t rcpt_len;      /* what RCPT TO carries: local part @ A-label domain          */
  unsigned char slab;     /* its block's size class (smtpc__item_mem)                   */
  unsigned char state;
  short reason, err;      /* the last thing learnt                                      */
  signed char attempts, temp_retries;
  signed char verdict;    /* as reported                                                */
  signed char catch_all;  /* the domain's, when it was reported                          */
  unsigned char utf8 : 1, probe : 1, reported : 1, in_dialog : 1, in_queue : 1, greylisted : 1,
      rcpt_apart : 1, tls : 1;
} item;

static inline char *item_input(item *it) { return (char *)(it + 1); }
/* An item about to be looked at: its lines are asked for while the one at hand is worked on
 * (items are touched long after they were last, from cold memory). */
static inline void item_prefetch(const item *it) {
  PREFETCH(it);
  PREFETCH((const char *)it + 64);
  PREFETCH((const char *)it + 128);
}
static inline const char *item_rcpt(const item *it) {
  return (const char *)(it + 1) + (it->rcpt_apart ? it->input_len + 1 : 0);
}

typedef struct host {
  struct host *hnext;
  struct group **grps;    /* the groups it serves: a freed slot wakes them (smtpc__host_freed) */
  size_t ngrps, capgrps;
  smtpc_sockaddr sa;      /* port set                                                   */
  char text[64];
  int active;
  int strikes;
  int no_tls;
  uint64_t next_at;       /* no new session before (pause, backoff)                     */
  uint64_t down_until;    /* refused a connection or greeted with 4xx: skip until       */
  /* why it is down, for the addresses that never reached it */
  int fail_err, fail_reason;
  const char *fail_detail;
  saved *fail_reply;
} host;

struct session;

typedef struct group {
  struct group *hnext;
  link node;              /* p->groups: every group                                     */
  link rnode;             /* p->ready while it may be able to start a session now       */
  int in_ready;
  uint64_t sleep_until;   /* in p->sleepers until then (a host's pause): 0 = not there   */
  char *key;
  smtpc_route *route;
  host **hosts;           /* one per (mx, addr) of route, in route order                 */
  link queue;
  size_t nqueued;
  struct session *open;   /* its last session, if it took all there was and has room left:
                             what is queued next joins it (smtpc__top_up)                */
  double reject_rate;     /* moving average of its RCPT replies >= 400 (see reject_odds) */
  unsigned long replies;  /* RCPT replies seen                                           */
} group;

typedef struct domain {
  struct domain *hnext;
  uint64_t hash;          /* of name (the table's): a chain is walked without the names  */
  char *name;             /* in the domain's own block                                  */
  int literal;
  smtpc__domain_facts facts; /* inspect.c's, worked out at its first result            */
  uint64_t token;         /* RESOLVE token: index in p->dom_by_token + 1                 */
  int state;
  int dns_error, null_mx, failed_status;
  group *grp;
  link waiting;           /* items waiting for the route                               */
  link held;              /* accepted items waiting for the catch-all answer           */
  int catch_all;
  int probe_state;
  int probe_tries;
  char *probe_rcpt;       /* one random address per domain for the run: a greylisting
                             server must see the same one again on the retry            */
  void *batch_mark;
  unsigned long rcpt_ok, rcpt_rejected; /* RCPT replies to its addresses (see reject_odds) */
} domain;

typedef struct session {
  link node;              /* p->sessions while the slot is used                         */
  struct smtpc_plan *p;
  unsigned sid;
  int state;              /* S_*                                                        */
  group *grp;
  host *h;
  const char *mx;
  smtpc_dialog *d;
  int tls_state;          /* 0 clear, 1 handshaking, 2 up                               */
  uint64_t timer_at;      /* connect or reply timeout; 0 = none                         */
  unsigned long progress, armed_at; /* replies read + writes made; value when last armed */
  int backed_off;         /* one 421 or rate limit backs the host off once, not per address */
  int wpending;           /* a WRITE for it is queued                                     */
  int close_out;          /* its CLOSE was handed out: the driver may release it now      */
  item **items;
  size_t nitems;
  double expect;          /* the rejections its items can be expected to get (reject_odds) */
  group *open_for;        /* the group whose `open` it is                                 */
  saved *last;            /* its last reply to an item (with its class): the next item
                             that gets the same one shares it                             */
  int last_stage;
} session;

typedef struct table {
  void **slots;
  size_t cap, n;
} table;

#define SLAB_GRAIN 32   /* item blocks are multiples of this, aligned to it             */
#define SLAB_CLASSES 16 /* up to 512 octets; a longer input gets a block of its own       */

typedef struct sleeper { /* a group waiting for a host's pause to end */
  uint64_t at;
  group *g;
} sleeper;

typedef struct qent { /* one queued action; its payload is taken when it is handed out */
  int type;
  unsigned sid;
  uint64_t token;
  item *it;               /* RESULT                                                     */
} qent;

struct smtpc_plan {
  smtpc_verify_opts o;
  char *mail_from, *helo;
  int mail_from_utf8;
  void *(*alloc)(void *ud, void *ptr, size_t size);
  void *alloc_ud;
  size_t mem, mem_peak;
  uint64_t rng;           /* splitmix64 state for probe local parts                     */
  uint64_t now;
  link delayed, groups, sessions;
  /* Every unreported input in add order (deadline order): a ring of pointers, an item's
   * slot NULLed when it is reported. Not a list through the items: unlinking one touched
   * its two neighbours, cold. */
  item **all;
  uint32_t all_head, all_tail; /* slots seq: head <= seq < tail (modulo 2^32)             */
  size_t all_cap;              /* a power of two                                        */
  uint64_t deadline_us;
  /* the items' slab: blocks of SLAB_GRAIN * k octets carved from chunks (opts.alloc), freed
   * blocks kept per class; every chunk goes when the last item does */
  void *slab_free[SLAB_CLASSES + 1];
  void *slab_chunks;
  char *slab_cur;
  size_t slab_left, slab_next, slab_live;
  /* The scheduling pass looks only at groups that may start a session: those in p->ready
   * (put there when addresses are queued to them or one of their hosts frees a slot) and
   * those whose wait in p->sleepers (a min-heap on at) is over. Work is O(what changed). */
  link ready;
  sleeper *sleepers;
  size_t nsleepers, capsleepers;
  table domains, groups_t, hosts;
  domain **dom_by_token;
  size_t ndom, cap_dom;
  session *slots;         /* o.concurrency slots, indexed by sid                         */
  unsigned *free_sids;    /* a stack of the free slots                                   */
  size_t nfree;
  size_t pending, active;
  int ended, canceled, dirty;
  uint64_t sched_next;    /* what the last schedule pass wants to wake for               */
  uint64_t want_wake;     /* timers armed since: the wake may have to come sooner        */
  uint64_t timer_min;     /* no session timer is due before this (0 = none armed)        */
  uint64_t announced;     /* the last WAKE handed out (0 = none outstanding)             */
  qent *q;                /* ring of queued actions                                     */
  size_t qhead, qlen, qcap;
  item *handed;           /* the RESULT handed out last: freed on the next call           */
  char *wbuf;             /* the WRITE handed out last                                    */
  size_t wcap;
  smtpc_result res;
  uint64_t opened, results;
};

/* ---------------------------------------------------------------------------------------- */
/* small helpers */

static inline uint64_t secs_us(double s) {
  return s <= 0 ? 0 : (uint64_t)(s * 1000000.0 + 0.5);
}

static inline void wake_at(uint64_t *next, uint64_t t) {
  if (*next == 0 || t < *next) *next = t;
}

/* ---------------------------------------------------------------------------------------- */
/* plan_store.c */

void *smtpc__pmalloc(smtpc_plan *p, size_t n);
void *smtpc__pcalloc(smtpc_plan *p, size_t n);
void smtpc__pfree(smtpc_plan *p, void *ptr);
void *smtpc__pgrow(smtpc_plan *p, void *arr, size_t n, size_t size, size_t *cap, size_t first);
char *smtpc__pstrdup(smtpc_plan *p, const char *s);
int smtpc__push_action(smtpc_plan *p, int type, unsigned sid, item *it);
host *smtpc__host_for(smtpc_plan *p, const smtpc_sockaddr *sa);
domain *smtpc__domain_for(smtpc_plan *p, const char *name, int literal);
int smtpc__domain_route(smtpc_plan *p, domain *d, const smtpc_route *route);
void smtpc__store_free(smtpc_plan *p);
void smtpc__group_ready(smtpc_plan *p, group *g);    /* it may start a session: look at it */
void smtpc__host_freed(smtpc_plan *p, host *h);      /* a slot on h: its groups are ready  */
void smtpc__group_sleep(smtpc_plan *p, group *g, uint64_t at); /* ready again at `at`      */
void smtpc__wake_sleepers(smtpc_plan *p, uint64_t now, uint64_t *next);
void *smtpc__item_mem(smtpc_plan *p, size_t n, unsigned char *cls); /* uninitialised */
void smtpc__item_mem_free(smtpc_plan *p, void *ptr, unsigned cls);
int smtpc__all_push(smtpc_plan *p, item *it);   /* it becomes the newest unreported     */
void smtpc__all_del(smtpc_plan *p, item *it);   /* it is reported                        */
static inline item *all_oldest(const smtpc_plan *p) {
  return p->all_head != p->all_tail ? p->all[p->all_head & (p->all_cap - 1)] : NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* plan_decide.c */

void smtpc__reply_unref(smtpc_plan *p, saved *r);
void smtpc__item_free(smtpc_plan *p, item *it);
void smtpc__item_release(smtpc_plan *p, item *it); /* free it if nothing refers to it */
void smtpc__item_detach(item *it);
void smtpc__report(smtpc_plan *p, item *it, int verdict, int reason);
void smtpc__learn(smtpc_plan *p, item *it, session *s, int stage, const smtpc_reply *rep,
                  int err, int reason, const char *detail);
void smtpc__enqueue(smtpc_plan *p, item *it, int front);
void smtpc__retry_or_report(smtpc_plan *p, item *it, uint64_t after);
void smtpc__flush_held(smtpc_plan *p, domain *d);
void smtpc__host_down(smtpc_plan *p, session *s, const item *it);
void smtpc__adopt_host_failure(item *it, const group *g);
void smtpc__dns_fail(smtpc_plan *p, domain *d, item *it);
item *smtpc__probe_new(smtpc_plan *p, domain *d);
void smtpc__probe_lost(smtpc_plan *p, domain *d, int count);
void smtpc__on_event(void *ud, const smtpc_dialog_event *ev); /* the dialog's callback */

/* ---------------------------------------------------------------------------------------- */
/* plan_session.c */

int smtpc__start_session(smtpc_plan *p, group *g, host *h, const char *mx);
int smtpc__top_up(smtpc_plan *p, group *g); /* into g->open; 1 when g's queue is empty     */
void smtpc__sess_step(session *s);      /* after every input to the dialog              */
void smtpc__sess_close(session *s);     /* CLOSE it (once)                              */
void smtpc__sess_connect_failed(session *s, int err, const char *detail);
void smtpc__sess_release(session *s);   /* the driver let go: free the slot             */
void smtpc__sess_timeout(session *s);

#endif
