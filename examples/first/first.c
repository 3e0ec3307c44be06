/* first.c: two tasks and a channel, in a program that ends by itself.
 *   cc first.c $(pkg-config --cflags --libs sluice) -o first && ./first */
#include <stdio.h>
#include <sluice/sluice.h>

/* What lives across a wait lives here, not in locals: one rc per task. */
struct pipe { sl_chan *ch; sl_task *prod, *cons; int i, v, prc, crc, rc, result; };

static int producer(sl_task *t, void *arg) {
    struct pipe *p = arg;
    SL_BEGIN(t);
    for (p->i = 0; p->i < 3; p->i++)
        SL_AWAIT(t, p->prc, sl_chan_send(t, p->ch, &p->i));   /* parks while full */
    SL_END(t);             /* its sender end goes with it: the receiver gets -EPIPE */
}

static int consumer(sl_task *t, void *arg) {
    struct pipe *p = arg;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_deadline_ms(1000));            /* no wait without a way out */
    for (;;) {
        SL_AWAIT(t, p->crc, sl_chan_recv(t, p->ch, &p->v));
        if (p->crc < 0) break;   /* -EPIPE: drained and no sender left; -ETIMEDOUT */
        printf("got %d\n", p->v);
    }
    SL_END(t);
}

static int main_task(sl_task *t, void *arg) {   /* starts both, waits for both */
    struct pipe *p = arg;
    SL_BEGIN(t);
    if (sl_chan_new(&p->ch, sizeof(int), 1, NULL) < 0 ||             /* this task owns it */
        sl_spawn(NULL, producer, p, &p->prod, &(sl_spawn_opts){ .joinable = true }) < 0)
        SL_RETURN(t, 1);
    sl_chan_attach(p->ch, p->prod, SL_CHAN_SENDER);
    if (sl_spawn(NULL, consumer, p, &p->cons, &(sl_spawn_opts){ .joinable = true }) < 0)
        SL_RETURN(t, 1);
    SL_AWAIT(t, p->rc, sl_task_join(t, p->prod, &p->result));
    SL_AWAIT(t, p->rc, sl_task_join(t, p->cons, &p->result));
    sl_chan_free(t, p->ch);
    SL_END(t);
}

int main(void) {
    static struct pipe p;
    sl_runtime *rt;
    if (sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 1,
                                                .stop_when_done = true,        /* run ends with the last task */
                                                .deadlock_policy = SL_DEADLOCK_STOP }) < 0)
        return 1;
    sl_spawn_on(sl_runtime_reactor(rt, 0), main_task, &p, NULL);
    int rc = sl_runtime_run(rt);        /* 0 once every task has ended; -EDEADLK */
    int leaks = sl_runtime_free(rt);    /* tasks or channels left behind, reported */
    return rc == 0 && leaks == 0 ? 0 : 1;
}
