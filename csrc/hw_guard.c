/**
 * @file hw_guard.c
 * @brief SIGBUS guard for reads of segment mappings (see hw_guard.h).
 */
#include "hw_guard.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

_Thread_local sigjmp_buf *hw_guard_jmp;

static struct sigaction previous;
static int installed;

static void on_sigbus(int sig, siginfo_t *info, void *ctx) {
    sigjmp_buf *jb = hw_guard_jmp;
    if (jb != NULL) {
        hw_guard_jmp = NULL;
        siglongjmp(*jb, 1);
    }
    /* Not ours: behave as if we were never installed. */
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction != NULL) {
            previous.sa_sigaction(sig, info, ctx);
            return;
        }
    } else if (previous.sa_handler != SIG_IGN && previous.sa_handler != SIG_DFL &&
               previous.sa_handler != NULL) {
        previous.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int hw_guard_init(void) {
    if (installed) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous) != 0) return errno;
    installed = 1;
    return 0;
}
