/**
 * @file hw_guard.h
 * @brief Turn SIGBUS inside a guarded read of a mapping into an error status.
 *
 * A mapped page whose backing read fails (EIO from the disk, a file truncated underneath)
 * raises SIGBUS on access (RELIABILITY.md section 2). Reads that walk a whole range of a
 * segment mapping (the CRC checks of read()) run inside HW_GUARD: a process-wide SIGBUS
 * handler, installed once by hw_guard_init(), siglongjmps back to the guard of the faulting
 * thread, and the guarded call returns HW_ERR_IO (errno EIO). A SIGBUS outside any guard is
 * passed to the handler that was installed before ours (or the default action).
 *
 * @locality thread-safe: the jump buffer is thread-local; guards do not nest.
 */
#ifndef HW_GUARD_H
#define HW_GUARD_H

#include <setjmp.h>

#include "hw_common.h"

/** @brief Install the SIGBUS handler (idempotent). @returns 0 or an errno. */
int hw_guard_init(void);

/** @internal per-thread state used by HW_GUARD_BEGIN/END. */
extern _Thread_local sigjmp_buf *hw_guard_jmp;

/**
 * Usage:
 *     sigjmp_buf jb;
 *     if (sigsetjmp(jb, 1) != 0) { hw_guard_jmp = NULL; return HW_ERR_IO; }
 *     hw_guard_jmp = &jb;
 *     ... touch the mapping ...
 *     hw_guard_jmp = NULL;
 */

#endif /* HW_GUARD_H */
