/* svc_dbroute.h: a route that is one step of the store and its answer.
 *
 * Most routes of the demo services read or change one record: take its
 * key (the route's capture, or a field of the body), run one step of the
 * store (svc_store.h) for it, and answer: nothing when the caller gave up
 * (its deadline, a disconnect: the server answers), 503 when the step
 * failed, 404 when there is no such record, else 200 with the record.
 * Written out, each such route costs a state type, a handler and the same
 * error mapping; here it is a table and one call:
 *
 *     static int charge_answer(svc_job *job, void *arg, svc_json *j) {
 *         const chg_io *io = arg;
 *         if (io->status < 0)
 *             return 404;
 *         svc_json_str(j, "order_id", io->id);
 *         ...
 *         return 200;
 *     }
 *     static const svc_dbroute get_charge = {
 *         .step = &get_step, SVC_DBROUTE_IO(chg_io, id), .answer = charge_answer,
 *         .noun = "order", .missing = "not_found", .no_key = "no such charge",
 *         .none = "no charge for order %s",
 *     };
 *     rc = svc_route_db(&S, "GET", "/charges/{order_id}", &get_charge);
 *
 * The answers, in full (KEY: the key; ERR: strerror of the step's error):
 *   - the capture is not a usable key (svc_key_copy): 404 `missing`,
 *     message `no_key`;
 *   - the step failed: 503 overloaded, "NOUN KEY: ERR" ("NOUN KEY: FAILED:
 *     ERR" when `failed` is set);
 *   - answer() returned 404: 404 `missing`, message `none` with KEY for
 *     its %s; 200: 200 with the object answer() built;
 *   - with key_is_order_id, the 503's and the 404-none's bodies carry KEY
 *     as "order_id".
 * The handler runs as any business route's (svc_route: the fault first,
 * naive mode in a worker). */
#ifndef SVC_DBROUTE_H
#define SVC_DBROUTE_H
#include <stddef.h>
#include "svc.h"
#include "svc_json.h"
#include "svc_store.h"

/* The largest 200 body answer() may build (bytes, with the NUL). */
#define SVC_DBROUTE_JSON_MAX 512

typedef struct svc_dbroute {
    const svc_dbstep *step;   /* read or write */
    size_t io_size;           /* the step's io: zeroed, then the key put in */
    size_t key_at, key_max;   /* the key: offset and size of a char array of io */
    /* NULL: the key is the route's capture; else parses the body into io
     * (the key included), answering itself what it refuses (400, or 503
     * when the route cannot take work now) and returning < 0 */
    int (*parse)(svc_job *job, void *io);
    /* after the step succeeded: 200 with the body in j, 404 for no such
     * record, or 0 when it answered itself (or chose not to) */
    int (*answer)(svc_job *job, void *io, svc_json *j);
    const char *noun;         /* what the key names, in messages: "order" */
    const char *failed;       /* NULL, or the 503's words: "void not recorded" */
    const char *missing;      /* the 404's error code: "not_found" */
    const char *no_key;       /* the 404's message for a capture that is no key (parse NULL) */
    const char *none;         /* the 404's message: exactly one %s (the key), no other % */
    bool key_is_order_id;     /* error bodies name the key as "order_id" */
    bool undo;                /* in the UNDO lane (svc_route_undo) */
} svc_dbroute;

/* .io_size, .key_at and .key_max for an io of type T keyed by its member
 * `key` (a char array). */
#define SVC_DBROUTE_IO(T, key) .io_size = sizeof(T), .key_at = offsetof(T, key), .key_max = sizeof(((T *)0)->key)

/* Adds the route (`r` is not copied: it must outlive the service, a
 * static const). Before svc_run. Returns 0, -EINVAL (r NULL; no step,
 * answer, noun, missing or none; none not exactly one %s; the key outside
 * io or empty; a capture key without no_key or without a capture in the
 * pattern), -ENOMEM, or sl_http_route's error. */
int svc_route_db(svc *s, const char *method, const char *pattern, const svc_dbroute *r);

/* Runs a write step that must happen although the request gave up (an
 * undo: give back, void, fail): detached (svc_db_detach) under a
 * compensation context of the job (svc_compensation_ctx: the trace, no
 * cancel) that ends after 60 s; then(io, rc) as svc_db_detach's. Returns 0
 * or a negative errno (nothing runs: the caller says so). */
int svc_db_undo(svc_job *job, const svc_dbstep *step, const void *io, size_t io_size,
                void (*then)(void *io, int rc));

#endif
