/* svc_job.c: business routes, the naive-mode worker, answers, background
 * contexts. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "svc_int.h"
#include "svc_json.h"

/* Naive mode: the request's copy, the worker's job and its answer. */
typedef struct svc_naive {
    svc_job *waiting;         /* the request's job; NULL once it gave up */
    sl_task *waiter;
    int status;
    char *answer;
    size_t answer_len;
    bool replied;
    svc_job job;              /* the worker's; its state and copies follow */
} svc_naive;

/* ---- answers ---------------------------------------------------------------------- */

bool svc_replied(const svc_job *job)
{
    return job->req_ ? sl_http_replied(job->req_) : job->naive_->replied;
}

int svc_reply(svc_job *job, int status, const char *json, size_t len)
{
    if (status >= 200 && status < 300)   /* errors are counted with their code by svc_reply_error */
        svc_metrics_answer(job->route_ ? job->route_->name : NULL, status, NULL);
    if (job->req_)
        return sl_http_reply(job->req_, status, "application/json", json, len);
    svc_naive *nv = job->naive_;
    if (nv->replied)
        return -EALREADY;
    if (!(nv->answer = malloc(len + 1)))
        return -ENOMEM;
    memcpy(nv->answer, json, len);
    nv->answer_len = len;
    nv->status = status;
    nv->replied = true;
    return 0;
}

int svc_reply_error(svc_job *job, int status, const char *code, const char *order_id, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* why, in words, as the sluice-cause header says it (sl_http.h); a
     * message passed on from upstream says it already */
    sl_cause_info ci;
    size_t n = strlen(msg);
    if (job->req_ && !strstr(msg, "(cause: ") && sl_http_req_cause(job->req_, status, &ci) == 0) {
        char why[SL_CAUSE_HDR_MAX + 64];
        snprintf(msg + n, sizeof msg - n, " (cause: %s)", sl_cause_info_text(&ci, why, sizeof why));
    }
    /* room for the message escaped at its worst (\u00XX for each byte) */
    char buf[sizeof msg * 6 + 256];
    svc_json j;
    size_t len;
    svc_json_init(&j, buf, sizeof buf);
    svc_json_str(&j, "error", code);
    svc_json_str(&j, "message", msg);
    if (order_id)
        svc_json_str(&j, "order_id", order_id);
    const char *text = svc_json_end(&j, &len);
    if (!text)   /* an order_id of kilobytes: no caller passes one */
        return -ENOSPC;
    if (status == 503 && job->req_)
        sl_http_reply_header(job->req_, "Retry-After", "1");
    svc_metrics_answer(job->route_ ? job->route_->name : NULL, status, code);
    return svc_reply(job, status, text, len);
}

int svc_upstream_status(int rc, const sl_http_resp *resp)
{
    if (rc == 0)
        return resp->status >= 200 && resp->status < 300 ? 200 : resp->status;
    switch (rc) {
    case -ETIMEDOUT: return 504;
    case -EBUSY: return 503;
    case -ECANCELED: return 0;
    default: return 502;
    }
}

bool svc_upstream_ambiguous(int rc, const sl_http_resp *resp)
{
    if (rc == -EBUSY || rc == -ECONNREFUSED)
        return false;
    if (rc < 0)   /* a timeout or a cancel before any byte left is as definite as -EBUSY */
        return sl_http_call_reached(resp);
    return resp->status == 500 || resp->status == 502 || resp->status == 504;
}

/* The upstream's name for messages: "inventory" for --inventory. */
static const char *upstream_name(const svc_job *job)
{
    const char *flag = job->s->prog->upstream_flag;
    return flag ? flag + 2 : "the upstream";
}

void svc_relay_cause(svc_job *job, const sl_http_resp *resp)
{
    sl_cause_info ci;
    if (job->req_ && resp->status >= 500 && sl_http_resp_cause(resp, &ci) == 0)
        (void)sl_http_reply_cause(job->req_, &ci);   /* -EALREADY: one relayed already */
}

int svc_reply_upstream(svc_job *job, int rc, const sl_http_resp *resp, const char *order_id)
{
    const char *up = upstream_name(job);
    int st = svc_upstream_status(rc, resp);
    if (st == 0)
        return 0;
    if (rc == 0) {   /* an HTTP error: pass it on with its code, message and cause */
        svc_relay_cause(job, resp);
        json_t *o = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
        const char *code = json_string_value(json_object_get(o, "error"));
        const char *msg = json_string_value(json_object_get(o, "message"));
        if (code)
            svc_reply_error(job, st, code, order_id, "%s", msg ? msg : "");
        else
            svc_reply_error(job, st = 502, "upstream_failed", order_id, "%s answered %d", up, resp->status);
        json_decref(o);
    } else if (st == 504) {
        svc_reply_error(job, st, "deadline_exceeded", order_id, "the budget ran out waiting for %s", up);
    } else if (st == 503) {
        svc_reply_error(job, st, "overloaded", order_id, "the connections to %s are all busy; retry later", up);
    } else {
        svc_reply_error(job, st, "upstream_failed", order_id, "%s: the call failed: %s", up, strerror(-rc));
    }
    return st;
}

/* ---- contexts --------------------------------------------------------------------- */

/* The context that hops and compensations derive from: the request's,
 * which carries its own copy of the trace (so it may outlive the request),
 * or one with a fresh trace if the request had none. */
sl_ctx *svc_job_link_ctx(svc_job *job)
{
    if (job->link_)
        return job->link_;
    if (sl_ctx_trace(job->ctx)) {
        job->link_ = sl_ctx_ref(job->ctx);
    } else {
        sl_traceparent tp;
        sl_traceparent_new(&tp);
        if (sl_ctx_with_trace(&job->link_, job->ctx, &tp) < 0)
            job->link_ = NULL;
    }
    return job->link_;
}

int svc_compensation_ctx(svc_job *job, uint64_t ms, sl_ctx **out)
{
    sl_ctx *base = svc_job_link_ctx(job), *free_of_cancel;
    if (!base)
        return -ENOMEM;
    int rc = sl_ctx_without_cancel(&free_of_cancel, base);
    if (rc < 0)
        return rc;
    rc = sl_ctx_with_timeout(out, free_of_cancel, ms);
    sl_ctx_unref(free_of_cancel);
    return rc;
}

int svc_spawn_bg(sl_ctx *ctx, sl_step_fn fn, void *state, const char *name, void (*state_free)(void *))
{
    svc_shard *sh = svc_here();
    if (!sh || sh->closing)
        return -ECANCELED;
    return sl_go(ctx, fn, state, NULL, &(sl_spawn_opts){ .name = name, .state_free = state_free, .group = &sh->bg });
}

/* ---- naive mode: a worker that ignores the request's context ------------------------ */

static void naive_free(svc_naive *nv)
{
    free(nv->answer);
    free(nv);
}

static int naive_work(sl_task *t, void *arg)
{
    svc_naive *nv = arg;
    return nv->job.route_->h(t, &nv->job);
}

/* The worker ended (on the request's reactor). */
static void naive_done(void *arg)
{
    svc_naive *nv = arg;
    sl_ctx_unref(nv->job.ctx);
    sl_ctx_unref(nv->job.link_);
    if (nv->waiting)
        sl_task_unpark(nv->waiter, 0);
    else
        naive_free(nv);
}

static void naive_abort(sl_task *t, void *obj, int err)
{
    svc_naive *nv = obj;
    (void)t;
    (void)err;
    nv->waiting->naive_ = NULL;
    nv->waiting = NULL;   /* the worker goes on; its answer will be dropped */
}

/* Copies what the worker needs (the request may go before it ends) and
 * spawns it under a context free of the request's deadline and cancel. */
static int naive_start(svc_job *job)
{
    const route_def *ro = job->route_;
    size_t off = sizeof(svc_naive) + ro->state_size;
    svc_naive *nv = calloc(1, off + job->body_len + 1 + job->param_len + 1 + job->query_len + 1);
    if (!nv)
        return -ENOMEM;
    char *body = (char *)nv + off, *param = body + job->body_len + 1, *query = param + job->param_len + 1;
    memcpy(body, job->body, job->body_len);
    if (job->param)
        memcpy(param, job->param, job->param_len);
    if (job->query)
        memcpy(query, job->query, job->query_len);
    nv->job = (svc_job){ .s = job->s, .sh = job->sh, .tag = job->tag, .body = body,
                         .body_len = job->body_len, .param = job->param ? param : NULL,
                         .param_len = job->param_len, .query = job->query ? query : NULL,
                         .query_len = job->query_len, .naive_ = nv, .route_ = ro };
    sl_ctx *keep = svc_job_link_ctx(job), *worker = NULL;
    int rc = keep ? sl_ctx_without_cancel(&worker, keep) : -ENOMEM;
    if (rc == 0) {
        nv->job.ctx = worker;
        nv->job.link_ = sl_ctx_ref(worker);   /* already a copy of the trace */
        rc = svc_spawn_bg(worker, naive_work, nv, ro->name,
                          (void (*)(void *))naive_done);
        if (rc < 0) {
            sl_ctx_unref(worker);
            sl_ctx_unref(worker);
        }
    }
    if (rc < 0) {
        free(nv);
        return rc;
    }
    nv->waiting = job;
    job->naive_ = nv;
    return 0;
}

static int naive_step(sl_task *t, svc_job *job)
{
    SL_BEGIN(t);
    if ((job->rc_ = naive_start(job)) < 0) {
        svc_reply_error(job, 503, "overloaded", NULL, "cannot start the work: %s", strerror(-job->rc_));
        SL_RETURN(t, 0);
    }
    job->naive_->waiter = t;
    SL_AWAIT(t, job->rc_, sl_task_park(t, job->naive_, naive_abort));
    if (job->rc_ < 0) {
        if (job->naive_) {   /* could not park: the worker's answer will be dropped */
            job->naive_->waiting = NULL;
            job->naive_ = NULL;
        }
        SL_RETURN(t, job->rc_);
    }
    svc_naive *nv = job->naive_;
    job->naive_ = NULL;
    if (nv->replied)
        sl_http_reply(job->req_, nv->status, "application/json", nv->answer, nv->answer_len);
    naive_free(nv);
    SL_END(t);
}

/* ---- business routes -------------------------------------------------------------- */

static void job_init(svc_job *job, sl_http_req *req)
{
    const route_def *ro = sl_http_req_arg(req);
    job->s = ro->s;
    job->sh = svc_here();
    job->req_ = req;
    job->route_ = ro;
    job->ctx = sl_http_req_ctx(req);
    job->tag = sl_traceparent_tag(sl_http_req_trace(req));
    job->body = sl_http_req_body(req, &job->body_len);
    job->param = ro->param[0] ? sl_http_req_param(req, ro->param, &job->param_len) : NULL;
    job->query = sl_http_req_query(req, &job->query_len);
    if (job->query_len == 0)
        job->query = NULL;
}

/* Every business request runs this step: the fault first, then the handler
 * (or, in naive mode, the worker). Each is a protothread of its own on t,
 * so t's resume point is reset between them. */
static int route_step(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    svc_job *job = sl_http_req_state(req);
    int rc;
    if (job->phase_ == 0) {
        job_init(job, req);
        job->phase_ = 1;
    }
    if (job->phase_ == 1) {
        if ((rc = svc_fault_step(t, job)) == SL_PENDING)
            return rc;
        if (rc != 0)
            goto done;
        job->phase_ = 2;
        SL_RESET(t);
    }
    rc = job->s->o.mode == SVC_NAIVE ? naive_step(t, job) : job->route_->h(t, job);
    if (rc == SL_PENDING)
        return rc;
done:
    sl_ctx_unref(job->link_);
    job->link_ = NULL;
    return rc < 0 ? rc : 0;
}

int svc__route(svc *s, const char *method, const char *pattern, svc_handler h, size_t state_size, bool undo,
               const struct svc_dbroute *db)
{
    route_def *ro = calloc(1, sizeof *ro);
    if (!ro)
        return -ENOMEM;
    *ro = (route_def){ .next = s->routes, .s = s, .h = h, .state_size = state_size, .db = db };
    const char *open = strchr(pattern, '{'), *close = open ? strchr(open, '}') : NULL;
    snprintf(ro->name, sizeof ro->name, "%s", pattern);
    if (close && (size_t)(close - open - 1) < sizeof ro->param)
        memcpy(ro->param, open + 1, (size_t)(close - open - 1));
    int rc = sl_http_route(s->srv, method, pattern, route_step, sizeof(svc_job) + state_size, ro);
    if (rc < 0) {
        free(ro);
        return rc;
    }
    s->routes = ro;
    /* a compensation that is shed leaves the books wrong (svc.h) */
    return undo ? sl_http_route_set(s->srv, method, pattern, &(sl_http_route_opts){ .lane = SL_HTTP_LANE_UNDO }) : 0;
}

int svc_route(svc *s, const char *method, const char *pattern, svc_handler h, size_t state_size)
{
    return svc__route(s, method, pattern, h, state_size, false, NULL);
}

int svc_route_undo(svc *s, const char *method, const char *pattern, svc_handler h, size_t state_size)
{
    return svc__route(s, method, pattern, h, state_size, true, NULL);
}

int svc_reply_json(svc_job *job, int status, svc_json *j)
{
    size_t len;
    const char *text = svc_json_end(j, &len);
    return text ? svc_reply(job, status, text, len) : -ENOSPC;
}

void svc_routes_free(svc *s)
{
    for (route_def *ro = s->routes, *next; ro; ro = next) {
        next = ro->next;
        free(ro);
    }
    s->routes = NULL;
}
