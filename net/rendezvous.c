/* rendezvous.c: rendezvous hashing (see rendezvous.h). */
#include "rendezvous.h"

/* MurmurHash3's 64-bit finalizer: every input bit flips each output bit
 * with a probability near 1/2, so nearby inputs give unrelated scores. */
static uint64_t fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t sl__hash_bytes(const void *p, size_t len)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ULL;   /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return fmix64(h ^ len);
}

uint64_t sl__rendezvous_score(uint64_t key, uint64_t rep)
{
    /* both are hashes already; mixing their XOR makes the scores of one
     * key on two replicas (inputs a fixed mask apart) unrelated */
    return fmix64(key ^ rep);
}

int sl__rendezvous_pick(uint64_t key, const uint64_t *ids, int n, bool (*usable)(void *arg, int i),
                        void *arg)
{
    int best = -1;
    uint64_t top = 0;
    for (int i = 0; i < n; i++) {
        if (usable && !usable(arg, i))
            continue;
        uint64_t s = sl__rendezvous_score(key, ids[i]);
        if (best < 0 || s > top) {
            best = i;
            top = s;
        }
    }
    return best;
}
