/* rendezvous.h: which replica owns a key, by rendezvous (highest random
 * weight) hashing. Private to net/.
 *
 * Every replica scores every key; the key goes to the replica with the
 * highest score among those usable. Taking a replica out moves only the
 * keys it owned (each to its own second choice, so they spread over the
 * rest), and bringing it back moves exactly those keys back; adding one
 * takes about 1/n of the keys, from every other replica alike. A replica's
 * id is a hash of its address, not its position, so the owners do not
 * change when the list is given in another order. */
#ifndef SL_RENDEZVOUS_H
#define SL_RENDEZVOUS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A 64-bit hash of len bytes (FNV-1a, then a finalizer that spreads every
 * input bit over the whole word). */
uint64_t sl__hash_bytes(const void *p, size_t len);

/* The score of the replica with id `rep` for the key whose hash is `key`. */
uint64_t sl__rendezvous_score(uint64_t key, uint64_t rep);

/* The index in ids[0..n) with the highest score for `key` among those for
 * which usable(arg, i) is true (every one when usable is NULL); -1 when
 * none is. Equal scores (a 2^-64 chance) go to the lower index. */
int sl__rendezvous_pick(uint64_t key, const uint64_t *ids, int n, bool (*usable)(void *arg, int i),
                        void *arg);
#endif
