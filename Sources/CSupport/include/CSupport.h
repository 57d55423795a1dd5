#ifndef SSM_CSUPPORT_H
#define SSM_CSUPPORT_H
#include <stddef.h>

/// Formats `x` as printf's "%.*g" with `digits` significant digits into `buf` (capacity `cap`),
/// without allocating; returns the number of characters written (excluding the NUL), or -1.
/// Swift cannot call the variadic snprintf without boxing its arguments in an array.
int ssm_format_g(char *buf, size_t cap, double x, int digits);

/// Names the calling thread (pthread_setname_np, a GNU extension Swift's Glibc module leaves out);
/// at most 15 bytes are kept. Shown by `top -H` and in /proc/PID/task/TID/comm.
void ssm_set_thread_name(const char *name);

/// Whether the CPU has AVX-512F (CPUID, through the compiler's builtin): /proc/cpuinfo may be hidden
/// (systemd's ProcSubset=pid), the instruction never is.
int ssm_cpu_has_avx512f(void);

/// Relaxed atomic loads, stores and adds on plain memory (Swift's Atomic<T> cannot live in an array):
/// the engine thread's per-block timing histogram, read by the daemon's main thread.
static inline long ssm_atomic_load(const long *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void ssm_atomic_store(long *p, long v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void ssm_atomic_add(long *p, long v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

#endif
