/* svc_dbroute.c: routes that are one step of the store (svc_dbroute.h). */
#include <errno.h>
#include <stdalign.h>
#include <string.h>
#include "svc_dbroute.h"
#include "svc_int.h"
#include "svc_map.h"

/* The handler's state: the wait, and the step's io after it. */
typedef struct dbroute_st {
    svc_db db;
    int rc;
    alignas(max_align_t) unsigned char io[];
} dbroute_st;

static bool gave_up(int rc) { return rc == -ETIMEDOUT || rc == -ECANCELED; }

static int dbroute_run(sl_task *t, svc_job *job)
{
    const svc_dbroute *r = job->route_->db;
    dbroute_st *st = svc_job_state(job);
    char *key = (char *)st->io + r->key_at;
    const char *oid = r->key_is_order_id ? key : NULL;
    SL_BEGIN(t);
    if (r->parse && r->parse(job, st->io) < 0)
        SL_RETURN(t, 0);
    if (!r->parse && !svc_key_copy(job->param, job->param_len, key, r->key_max))
        SL_RETURN(t, svc_reply_error(job, 404, r->missing, NULL, "%s", r->no_key));
    SL_AWAIT(t, st->rc, svc_db_start(t, &st->db, job->s->store, r->step, st->io, r->io_size));
    st->rc = svc_db_end(&st->db, st->io, st->rc);
    if (gave_up(st->rc))   /* nothing to a caller that is gone; a write may have run all the same */
        SL_RETURN(t, st->rc);
    if (st->rc < 0)
        SL_RETURN(t, svc_reply_error(job, 503, "overloaded", oid, "%s %s: %s%s%s", r->noun, key,
                                     r->failed ? r->failed : "", r->failed ? ": " : "", strerror(-st->rc)));
    char buf[SVC_DBROUTE_JSON_MAX];
    svc_json j;
    svc_json_init(&j, buf, sizeof buf);
    int status = r->answer(job, st->io, &j);
    if (status == 404)
        SL_RETURN(t, svc_reply_error(job, 404, r->missing, oid, r->none, key));
    if (status == 200)
        SL_RETURN(t, svc_reply_json(job, 200, &j));
    SL_END(t);
}

/* `none` takes the key through printf: exactly one %s, no other %. */
static bool one_s(const char *fmt)
{
    const char *p = strchr(fmt, '%');
    return p && p[1] == 's' && !strchr(p + 2, '%');
}

int svc_route_db(svc *s, const char *method, const char *pattern, const svc_dbroute *r)
{
    if (!r || !r->step || !r->answer || !r->noun || !r->missing || !r->none || !one_s(r->none) ||
        r->key_max == 0 || r->key_at > r->io_size || r->key_max > r->io_size - r->key_at ||
        (!r->parse && (!r->no_key || !strchr(pattern, '{'))))
        return -EINVAL;
    return svc__route(s, method, pattern, dbroute_run, sizeof(dbroute_st) + r->io_size, r->undo, r);
}

int svc_db_undo(svc_job *job, const svc_dbstep *step, const void *io, size_t io_size,
                void (*then)(void *io, int rc))
{
    sl_ctx *ctx = NULL;
    int rc = svc_compensation_ctx(job, 60000, &ctx);
    if (rc == 0)
        rc = svc_db_detach(ctx, job->s->store, step, io, io_size, then);
    sl_ctx_unref(ctx);
    return rc;
}
