/* The seccomp cost benchmark's workload: N raw calls of one syscall, timed from inside the process
 * (so container start-up is not counted). getppid is allowed unconditionally (the kernel's action
 * cache skips the filter); personality(0xffffffff) is argument-checked and runs the filter. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    long n = atol(argv[2]);
    int personality = !strcmp(argv[1], "personality");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        if (personality)
            syscall(SYS_personality, 0xffffffffUL);
        else
            syscall(SYS_getppid);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.9f\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
    return 0;
}
