/* heap.c: see heap.h. */
#include <errno.h>
#include <stdlib.h>
#include "heap.h"

static void place(sl_heap *h, size_t i, sl_task *t)
{
    h->v[i] = t;
    t->heap_idx_ = (uint32_t)i;
}

static void sift_up(sl_heap *h, size_t i)
{
    sl_task *t = h->v[i];
    while (i > 1 && h->v[i / 2]->wake_at_ > t->wake_at_) {
        place(h, i, h->v[i / 2]);
        i /= 2;
    }
    place(h, i, t);
}

static void sift_down(sl_heap *h, size_t i)
{
    sl_task *t = h->v[i];
    for (;;) {
        size_t c = 2 * i;
        if (c > h->n)
            break;
        if (c + 1 <= h->n && h->v[c + 1]->wake_at_ < h->v[c]->wake_at_)
            c++;
        if (h->v[c]->wake_at_ >= t->wake_at_)
            break;
        place(h, i, h->v[c]);
        i = c;
    }
    place(h, i, t);
}

int sl_heap_push(sl_heap *h, sl_task *t)
{
    if (h->n + 1 >= h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        sl_task **v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    h->n++;
    place(h, h->n, t);
    sift_up(h, h->n);
    return 0;
}

void sl_heap_remove(sl_heap *h, sl_task *t)
{
    size_t i = t->heap_idx_;
    if (!i)
        return;
    t->heap_idx_ = 0;
    sl_task *last = h->v[h->n--];
    if (i > h->n)
        return;
    place(h, i, last);
    sift_up(h, i);
    sift_down(h, last->heap_idx_);
}

void sl_heap_free(sl_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
