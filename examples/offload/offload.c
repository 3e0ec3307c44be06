#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sluice/sluice.h>

struct lookup { const char *host; struct addrinfo *ai; };   /* the work's own memory */

static int resolve(void *arg) {                  /* on a worker thread: may block */
    struct lookup *l = arg;
    return getaddrinfo(l->host, "80", NULL, &l->ai) ? -EHOSTUNREACH : 0;
}

static void lookup_free(void *arg, int result) { /* the task gave up: the pool hands arg back */
    struct lookup *l = arg;
    if (result == 0)
        freeaddrinfo(l->ai);
    free(l);
}

struct main_st { struct lookup *l; int rc; };

static int main_task(sl_task *t, void *arg) {
    struct main_st *s = arg;
    SL_BEGIN(t);
    s->l = calloc(1, sizeof *s->l);
    s->l->host = "localhost";
    sl_task_set_deadline(t, sl_deadline_ms(2000));            /* bounded like any wait */
    SL_AWAIT(t, s->rc, sl_offload(t, resolve, s->l, &(sl_offload_opts){
                 .name = "getaddrinfo", .abandon = lookup_free }));
    if (s->rc == 0) {                            /* the result came: arg is ours again */
        printf("localhost resolves\n");
        freeaddrinfo(s->l->ai);
        free(s->l);
    } else if (s->rc == -EHOSTUNREACH) {
        free(s->l);
    } else {                                     /* -ETIMEDOUT, -ECANCELED: lookup_free has it */
        printf("gave up: %d\n", s->rc);
    }
    sl_runtime_stop(sl_reactor_runtime(sl_task_reactor(t)));
    SL_END(t);
}

int main(void) {
    sl_runtime *rt;
    struct main_st s = { 0 };
    sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 1, .offload_threads = 2 });
    sl_spawn_on(sl_runtime_reactor(rt, 0), main_task, &s, NULL);
    sl_runtime_run(rt);
    return sl_runtime_free(rt) ? 1 : 0;
}
