/* svc_hop.h: running a state step on the reactor that owns the state.
 *
 * A step is one short piece of work on a shard's state: a lookup, an
 * update, or a lock taken and a record changed. `begin` runs on the owner
 * and may park the task (a lock wait) by returning SL_PENDING; `finish`
 * (may be NULL) then runs there with the wait's result. Both read and write
 * only `io`, a plain struct of inline values (no pointers into the
 * request), which is copied to the owner and back.
 *
 *     struct paid_io io = { ... };
 *     SVC_ON(t, st->rc, &st->hop, job, owner, &paid_step, &st->io);
 *
 * When the owner is the calling task's own reactor (always, with one
 * reactor) the step runs inline in the caller's task: no message, no
 * allocation. Otherwise it travels: a context linked to the job's
 * (sl_ctx_link_on) is made on the owner, a task runs the step there under
 * it (so the request's deadline and cancellation reach a lock wait), and
 * the result is posted back and wakes the caller. If the caller gives up
 * first (its deadline, a disconnect), it leaves at once; the late result
 * is dropped on its reactor (step->drop frees what it owned) and the
 * hop's memory freed there. The owner's task belongs to the owner shard's
 * background group, so shutdown ends it. */
#ifndef SVC_HOP_H
#define SVC_HOP_H
#include "svc.h"

typedef struct svc_step {
    const char *name;                                  /* the owner's task name */
    int (*begin)(sl_task *t, void *io);
    int (*finish)(sl_task *t, void *io, int rc);       /* NULL: begin's result */
    bool undo;     /* an undo (give back, void): runs even when the caller is
                    * cancelled, which then does not wait for it */
    void (*drop)(void *io);   /* NULL, or frees what the step put in io for the
                               * caller (a result that travels back as a
                               * pointer) when the caller gave up first */
} svc_step;

/* The caller's handle, in its task state. */
typedef struct svc_hop {
    bool local;
} svc_hop;

/* Starts `step`: its result, or SL_PENDING (then svc_hop_end with the
 * final one); -ENOMEM; the cancel error when the caller is cancelled (an
 * undo step is still run, without waiting for it). */
int svc_hop_start(sl_task *t, svc_hop *hop, svc_job *job, sl_reactor *owner, const svc_step *step,
                  void *io, size_t io_size);

/* Completes a step after its start (runs `finish` for an inline step). */
int svc_hop_end(sl_task *t, svc_hop *hop, const svc_step *step, void *io, int rc);

#define SVC_ON(t, rc, hop, job, owner, step, io)                                          \
    do {                                                                                  \
        SL_AWAIT(t, rc, svc_hop_start(t, hop, job, owner, step, io, sizeof *(io)));      \
        (rc) = svc_hop_end(t, hop, step, io, rc);                                         \
    } while (0)

#endif
