/* svc_undo.h: compensations that always complete (an outbox of undo calls).
 *
 * An undo is a call that takes back what the chain did at a callee:
 * order-svc's POST /release at inventory, inventory-svc's POST /void at
 * payment. Once it is decided it must reach the callee, however long the
 * callee is overloaded, hanging or down; the request that decided it may
 * be long gone. svc_undo_post() records it in the service's outbox and
 * returns at once. A background task per entry then calls the callee (the
 * program's upstream), each attempt with its own budget (SVC_UNDO_CALL_MS),
 * until the callee acknowledges it: a 2xx, or 404 (the callee never had
 * the record, and has left a tombstone so that it never will:
 * docs/services.md). Between attempts it sleeps a capped exponential
 * backoff with jitter (SVC_UNDO_BACKOFF_MS doubling up to SVC_UNDO_CAP_MS,
 * each sleep drawn from [b/2, b]), so that a callee coming back from an
 * outage is not met by every pending undo at the same instant.
 *
 * Every replica (issue 21): the callee may be several replicas, and the
 * step being undone may have gone to any of them (the key's owner, or its
 * failover choice while the owner was ejected; after this service's own
 * crash nobody knows which). So an undo goes to EVERY replica the
 * upstream lists (sl_http_upstream_replicas, sl_http_call_to) and is done
 * only when each has acknowledged; one that never had the record answers
 * 404 and keeps a tombstone, which is harmless (the order is failed and
 * never reserved again). Each round asks, one after the other, the
 * replicas listed now that have not acknowledged yet; a replica that is
 * down keeps the entry pending (and its outbox row) and is asked again
 * after the backoff, until it is back. The list is the reactor's at each
 * round: a replica that a lookup of its name retires is no longer waited
 * for (its address is gone; list stateful replicas by stable names, e.g.
 * a StatefulSet's per-pod names, so that a restart keeps its entry), and
 * one that joins must acknowledge too. An acknowledgement is remembered
 * by address for the life of the entry (not across a restart, when every
 * replica is asked again).
 *
 * The callee's admission never sheds these calls on a full server: the
 * undo routes are in the server's UNDO lane (svc_route_undo).
 *
 * Bounded: the callers refuse new work while SVC_UNDO_MAX entries (or
 * --max-pending) are pending (svc_undo_full): order-svc a new order (503), inventory-svc a
 * release (503, which order's outbox retries later). A post itself never
 * fails for room: a request that is already under way when the outbox
 * fills must still be able to undo what it did, so the bound is
 * the limit plus the requests in flight. A long outage of a callee
 * turns into 503s at the front rather than unbounded memory.
 *
 * Visible: each pending entry is a task named "undo POST /release <order>"
 * in /debug/tasks, and GET /debug/compensations answers the counters
 * {"pending","posted","completed","attempts","refused","abandoned","limit"}
 * (refused: posts that failed, for memory or at shutdown)
 * (a CONTROL-lane route: never queued or shed).
 *
 * Shutdown: the entries run through the drain; those still pending when
 * the background tasks are ended (after the drain) are reported on stderr,
 * one line each ("<prog>: shutdown: undo POST /void {...} still pending
 * after N attempts (last answer S)") and counted as abandoned: never
 * silently lost; their rows stay in the outbox table.
 *
 * Durable (issue 16): the outbox is a table of the service's database
 * (svc_store.h); the step that decides an undo inserts its row in its own
 * transaction (svc_conn_outbox_add), then posts it here with the row's
 * seq; the acknowledgement deletes the row; svc_undo_resume posts every
 * row again at start, so a crash loses no decided undo (an undo may be
 * sent twice: every undo is idempotent).
 *
 * All functions run on a reactor of the service (inside a handler). */
#ifndef SVC_UNDO_H
#define SVC_UNDO_H
#include "svc.h"

#define SVC_UNDO_MAX 50000          /* pending entries per process (default) */
#define SVC_UNDO_CALL_MS 1000       /* the budget of one attempt */
#define SVC_UNDO_BACKOFF_MS 50      /* the first backoff */
#define SVC_UNDO_CAP_MS 2000        /* the largest backoff */
#define SVC_UNDO_BODY_MAX 192

/* Posts `body` (JSON, at most SVC_UNDO_BODY_MAX-1 bytes) to `path` of
 * every replica of the program's upstream until each acknowledged. `key`
 * (the order id) names the task. The entry keeps the job's trace (a copy) and nothing else of the
 * job. Returns 0; -EINVAL (no upstream, a path or body too long),
 * -ECANCELED (the service is shutting down: its background tasks are
 * ending), -ENOMEM. On failure nothing is pending: the caller must not
 * report success. */
int svc_undo_post(svc_job *job, const char *path, const char *body, size_t len, const char *key, int64_t seq);

/* `seq`: the entry's row in the store's outbox table (svc_store.h), which
 * the step that decided the undo inserted in its own transaction; the
 * acknowledgement deletes it. 0: no row (nothing to delete).
 *
 * The same without a request (a new trace of its own): recovery at
 * start, on a reactor of the service. */
int svc_undo_post_bg(svc *s, const char *path, const char *body, size_t len, const char *key, int64_t seq);

/* At start, before the server runs: reads every row of the outbox (the
 * undos decided but not acknowledged when the service last stopped or
 * crashed) and has them posted again once reactor 0 runs. *n: how many.
 * Blocking (before the runtime runs). Returns 0 or a negative errno. */
int svc_undo_resume(svc *s, long *n);

/* Sets the bound (--max-pending; 0: SVC_UNDO_MAX). Before the service runs. */
void svc_undo_set_limit(uint32_t max);

/* True while the outbox holds as many entries as the bound, or more:
 * refuse new work that might need an undo. */
bool svc_undo_full(void);

/* Entries pending now. */
long svc_undo_pending(void);

/* Adds GET /debug/compensations to s's server (svc_setup does it). */
int svc_undo_route(svc *s);

#endif
