/* svc_int.h: what the files of services/common share (private). */
#ifndef SVC_INT_H
#define SVC_INT_H
#include "svc.h"
#include "svc_metrics.h"

/* A business route. */
typedef struct route_def {
    struct route_def *next;
    svc *s;
    svc_handler h;
    size_t state_size;
    const struct svc_dbroute *db;   /* svc_route_db's table, or NULL */
    char param[32];           /* the pattern's capture name, or "" */
    char name[64];            /* the pattern: names the naive workers (outlives the server) */
} route_def;

/* svc_job.c */
void svc_routes_free(svc *s);
/* svc_route and svc_route_undo (undo), with svc_route_db's table (or NULL) */
int svc__route(svc *s, const char *method, const char *pattern, svc_handler h, size_t state_size, bool undo,
               const struct svc_dbroute *db);

/* svc_admin.c: the admin routes; the fault a request meets before its
 * handler (a protothread on t: 0 go on, 1 done, < 0 failed, SL_PENDING). */
int svc_admin_routes(svc *s);
int svc_fault_step(sl_task *t, svc_job *job);

#endif
