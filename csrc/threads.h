/* How many threads a kernel may use: the caller's request, capped.
 *
 * Every kernel module calls cg_threads_init() once when it is imported and passes each request
 * through cg_threads() before an OpenMP region is opened:
 *   - at least 1, and at most cg_thread_cap: the CPUs this process may run on, but at least 2
 *     (so that the parallel paths stay testable on a one-CPU machine). More threads than CPUs
 *     only add the cost of waking them; tens of thousands made GNU OpenMP fail to create them
 *     (a crash) or spend a second starting them.
 *   - exactly 1 in a process made by fork(): GNU OpenMP's thread pool does not survive a fork
 *     (the child has one thread but the pool believes it has more, so its next parallel region
 *     waits forever). PyTorch drops forked children to one thread too. The flag is set by a
 *     pthread_atfork handler registered at import, so it holds even when a kernel is called
 *     directly, without cygrad.backend.
 * Results never depend on the thread count, so neither cap changes a bit of any output.
 * Each extension module has its own copy of this state (a static in each .so).
 */
#ifndef CYGRAD_THREADS_H
#define CYGRAD_THREADS_H

#if defined(_WIN32)
#define CG_HAVE_FORK 0
#else
#define CG_HAVE_FORK 1
#include <pthread.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h> /* sched_getaffinity, CPU_COUNT (Python.h defines _GNU_SOURCE) */
#endif
#endif

static int cg_thread_cap = 2;
static volatile int cg_forked = 0;

#if CG_HAVE_FORK
static void cg_on_fork_child(void) { cg_forked = 1; }
#endif

static void cg_threads_init(void)
{
    long n = 0;
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
#endif
#if CG_HAVE_FORK && defined(_SC_NPROCESSORS_ONLN)
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    if (n < 2)
        n = 2;
    if (n > 1024)
        n = 1024;
    cg_thread_cap = (int)n;
#if CG_HAVE_FORK
    pthread_atfork(NULL, NULL, cg_on_fork_child);
#endif
}

/* The thread count for a request: 1 <= result <= cg_thread_cap, 1 after a fork. */
static inline int cg_threads(long long requested)
{
    if (cg_forked || requested <= 1)
        return 1;
    return requested < cg_thread_cap ? (int)requested : cg_thread_cap;
}

/* The thread count for a kernel call over `work` elements: 1 below `serial_below` (an OpenMP
 * region costs more than it saves on small work: tens of microseconds to wake a sleeping
 * worker), else cg_threads(requested). Each family keeps its own threshold, a module global
 * that tests lower so that small arrays still take the parallel paths. */
static inline int cg_threads_for(long long requested, long long work, long long serial_below)
{
    return work < serial_below ? 1 : cg_threads(requested);
}

#endif
