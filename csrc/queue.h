/* Units of work shared out between the threads of one kernel call, taken from queues.
 *
 * A threaded product gives each thread a share (a run of C's tiles) as a queue of units: the
 * thread takes them from the front, in its one-thread order; a thread that has finished its own
 * takes the units of another share from the back. So a thread the host held up, or woke late,
 * is not waited for at the end. Which thread computes a unit changes no bit of any output: a
 * unit is a set of outputs, each computed by the same sequence of operations wherever it runs.
 *
 * A queue is one 64-bit word, front in the low 32 bits and end in the high 32, changed by
 * compare-and-swap (a unit is taken exactly once), on a cache line of its own.
 */
#ifndef CYGRAD_QUEUE_H
#define CYGRAD_QUEUE_H

#include <time.h>

typedef struct {
    unsigned long long word; /* front | end << 32 */
    int done;                /* set when its thread has finished (its share and its stealing) */
    char pad[64 - sizeof(unsigned long long) - sizeof(int)];
} cg_queue;

static int cg_steal_hold = 0;   /* tests: threads other than 0 start once thread 0 is done */
static long long cg_stolen = 0; /* units taken from another share's queue since import */

#if defined(_MSC_VER)
#include <intrin.h>
static int cg_cas64(unsigned long long *p, unsigned long long *old, unsigned long long next)
{
    unsigned long long seen = (unsigned long long)_InterlockedCompareExchange64(
        (volatile long long *)p, (long long)next, (long long)*old);
    if (seen == *old)
        return 1;
    *old = seen;
    return 0;
}
#define CG_LOAD64(p) ((unsigned long long)_InterlockedOr64((volatile long long *)(p), 0))
#define CG_LOAD32(p) _InterlockedOr((volatile long *)(p), 0)
#define CG_STORE32(p, v) _InterlockedExchange((volatile long *)(p), (v))
#define CG_ADD64(p, n) _InterlockedExchangeAdd64((volatile long long *)(p), (n))
#else
static int cg_cas64(unsigned long long *p, unsigned long long *old, unsigned long long next)
{
    return __atomic_compare_exchange_n(p, old, next, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
#define CG_LOAD64(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define CG_LOAD32(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define CG_STORE32(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define CG_ADD64(p, n) __atomic_add_fetch((p), (n), __ATOMIC_RELAXED)
#endif

/* A queue of n units (front 0). */
static inline unsigned long long cg_queue_of(long long n) { return (unsigned long long)n << 32; }

/* The next unit from the front (back = 0) or from the back, or -1 when fewer than `keep`
 * are left (a thief takes one only while at least 2 wait: the owner is busy with one). */
static inline long long cg_take(cg_queue *q, int back, unsigned keep)
{
    unsigned long long old = CG_LOAD64(&q->word), next;
    unsigned front, end;
    do {
        front = (unsigned)(old & 0xffffffffu);
        end = (unsigned)(old >> 32);
        if (end < front + keep)
            return -1;
        next = back ? old - (1ull << 32) : old + 1;
    } while (!cg_cas64(&q->word, &old, next));
    return back ? (long long)end - 1 : (long long)front;
}

static inline void cg_set_done(cg_queue *q) { CG_STORE32(&q->done, 1); }

static inline void cg_count_stolen(long long n) { CG_ADD64(&cg_stolen, n); }

static inline long long cg_stolen_count(void)
{
    return (long long)CG_LOAD64((unsigned long long *)&cg_stolen);
}

/* Spin until q is done, for 10 s at most (tests only: cg_steal_hold). */
static void cg_wait_done(cg_queue *q)
{
    clock_t t0 = clock();
    while (!CG_LOAD32(&q->done))
        if ((double)(clock() - t0) > 10.0 * CLOCKS_PER_SEC)
            return;
}

#endif
