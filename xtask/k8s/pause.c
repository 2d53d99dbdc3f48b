/* The pod sandbox's process: holds the pod's namespaces and does nothing
 * else (no exec, no wakeups, so the agent under test sees no noise from
 * it). Exits on SIGTERM/SIGINT; reaps children when it is PID 1. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction quit = {.sa_handler = stop};
    struct sigaction child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGTERM, &quit, NULL);
    sigaction(SIGINT, &quit, NULL);
    sigaction(SIGCHLD, &child, NULL);
    for (;;)
        pause();
}
