/* router.c: a list of routes, matched segment by segment.
 *
 * Services have tens of routes, not thousands: a linear scan over
 * pre-split patterns costs less than building a tree and is easy to read. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sl_router.h"

#define MAX_SEGS 32

typedef struct seg {
    const char *s;      /* into route->pattern */
    size_t len;
    bool capture;       /* {name}: s/len is the name */
} seg;

typedef struct route {
    char *method, *pattern;
    size_t method_len;
    seg segs[MAX_SEGS];
    int nsegs, ncaptures;
    void *handler, *arg;
} route;

struct sl_router {
    route *v;
    size_t n, cap;
};

int sl_router_new(sl_router **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void sl_router_free_args(sl_router *r, void (*free_arg)(void *))
{
    for (size_t i = 0; r && i < r->n; i++)
        free_arg(r->v[i].arg);
}

void sl_router_free(sl_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].method);
        free(r->v[i].pattern);
    }
    free(r->v);
    free(r);
}

static bool is_method(const char *m)
{
    if (!*m)
        return false;
    for (; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    return true;
}

/* Splits rt->pattern into segments. Returns 0 or -EINVAL. */
static int split(route *rt)
{
    const char *p = rt->pattern;
    if (*p != '/')
        return -EINVAL;
    rt->nsegs = rt->ncaptures = 0;
    while (*p == '/' && p[1]) {
        p++;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (rt->nsegs == MAX_SEGS)
            return -EINVAL;
        seg *s = &rt->segs[rt->nsegs++];
        const char *open = memchr(p, '{', len), *close = memchr(p, '}', len);
        if (open || close) {
            if (open != p || close != p + len - 1 || len < 3 || memchr(p + 1, '{', len - 1) ||
                rt->ncaptures == SL_ROUTE_MAX_PARAMS)
                return -EINVAL;
            *s = (seg){ p + 1, len - 2, true };
            rt->ncaptures++;
        } else {
            if (len == 0 && end)
                return -EINVAL;   /* "//" */
            *s = (seg){ p, len, false };
        }
        p += len;
    }
    return 0;
}

int sl_router_add(sl_router *r, const char *method, const char *pattern, void *handler, void *arg)
{
    if (!method || !pattern || !is_method(method))
        return -EINVAL;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].method, method) && !strcmp(r->v[i].pattern, pattern))
            return -EEXIST;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        route *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    route *rt = &r->v[r->n];
    memset(rt, 0, sizeof *rt);
    rt->method = strdup(method);
    rt->pattern = strdup(pattern);
    if (!rt->method || !rt->pattern) {
        free(rt->method);
        free(rt->pattern);
        return -ENOMEM;
    }
    rt->method_len = strlen(method);
    int rc = split(rt);
    if (rc < 0) {
        free(rt->method);
        free(rt->pattern);
        return rc;
    }
    rt->handler = handler;
    rt->arg = arg;
    r->n++;
    return 0;
}

/* Does `rt` match the path's segments? Counts its literal segments, so the
 * most literal match can win. */
static bool match_path(const route *rt, const char **ps, const size_t *pl, int n, sl_route_match *m, int *literals)
{
    if (rt->nsegs != n)
        return false;
    int np = 0, lit = 0;
    for (int i = 0; i < n; i++) {
        const seg *s = &rt->segs[i];
        if (s->capture) {
            if (pl[i] == 0)
                return false;
            if (m)
                m->params[np++] = (sl_route_param){ s->s, ps[i], s->len, pl[i] };
        } else {
            if (s->len != pl[i] || memcmp(s->s, ps[i], pl[i]))
                return false;
            lit++;
        }
    }
    if (m)
        m->nparams = np;
    *literals = lit;
    return true;
}

static bool method_is(const route *rt, const char *method, size_t len)
{
    if (rt->method_len == len && !memcmp(rt->method, method, len))
        return true;
    return len == 4 && !memcmp(method, "HEAD", 4) && rt->method_len == 3 && !memcmp(rt->method, "GET", 3);
}

static void allow_add(char *allow, size_t size, const char *method)
{
    if (!allow || !size)
        return;
    size_t used = strlen(allow);
    /* no duplicates: two patterns may match with the same method */
    const char *p = allow;
    size_t ml = strlen(method);
    while ((p = strstr(p, method))) {
        if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || !p[ml]))
            return;
        p += ml;
    }
    size_t sep = used ? 2 : 0;
    if (used + sep + ml >= size)
        return;   /* the caller's buffer is full: the list stops here */
    memcpy(allow + used, ", ", sep);
    memcpy(allow + used + sep, method, ml + 1);
}

int sl_router_match(const sl_router *r, const char *method, size_t method_len,
                    const char *path, size_t path_len, sl_route_match *m,
                    char *allow, size_t allow_size)
{
    const char *q = memchr(path, '?', path_len);
    if (q)
        path_len = (size_t)(q - path);
    if (!path_len || path[0] != '/')
        return -ENOENT;
    const char *ps[MAX_SEGS];
    size_t pl[MAX_SEGS];
    int n = 0;
    const char *p = path, *end = path + path_len;
    while (p < end && *p == '/' && p + 1 < end) {
        p++;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t len = slash ? (size_t)(slash - p) : (size_t)(end - p);
        if (n == MAX_SEGS)
            return -ENOENT;
        ps[n] = p;
        pl[n++] = len;
        p += len;
    }
    if (allow && allow_size)
        allow[0] = '\0';
    const route *best = NULL;
    int best_lit = -1, lit;
    bool path_known = false;
    for (size_t i = 0; i < r->n; i++) {
        const route *rt = &r->v[i];
        /* most routes differ in their segment count or first segment: a
         * compare here, before the call */
        if (rt->nsegs != n || (n && !rt->segs[0].capture && rt->segs[0].len != pl[0]))
            continue;
        if (!match_path(rt, ps, pl, n, NULL, &lit))
            continue;
        path_known = true;
        if (!method_is(rt, method, method_len))
            continue;
        if (lit > best_lit) {
            best = rt;
            best_lit = lit;
        }
    }
    /* the Allow list only for a 405: a request that matched (POST /orders
     * beside GET /orders) does not pay for it */
    for (size_t i = 0; !best && path_known && allow && i < r->n; i++) {
        const route *rt = &r->v[i];
        if (rt->nsegs == n && match_path(rt, ps, pl, n, NULL, &lit))
            allow_add(allow, allow_size, rt->method);
    }
    if (!best) {
        if (path_known && method_len == 4 && !memcmp(method, "HEAD", 4))
            return -EOPNOTSUPP;
        return path_known ? -EOPNOTSUPP : -ENOENT;
    }
    match_path(best, ps, pl, n, m, &lit);   /* sets params[0..nparams) */
    m->handler = best->handler;
    m->arg = best->arg;
    m->pattern = best->pattern;
    return 0;
}

const char *sl_route_param_get(const sl_route_match *m, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (int i = 0; i < m->nparams; i++)
        if (m->params[i].name_len == nl && !memcmp(m->params[i].name, name, nl)) {
            *len = m->params[i].value_len;
            return m->params[i].value;
        }
    return NULL;
}
