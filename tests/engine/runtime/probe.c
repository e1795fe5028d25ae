/* A static probe run inside test containers: it makes one raw system call and prints
 * "ok" or "errno=N", so a test can tell EPERM (seccomp's default) from ENOSYS (the stub). */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(long result) {
    if (result < 0) {
        printf("errno=%d\n", errno);
        return 1;
    }
    printf("ok\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *what = argv[1];
    if (!strcmp(what, "syscall") && argc > 2)
        return report(syscall(atol(argv[2]), 0, 0, 0, 0, 0, 0));
    if (!strcmp(what, "mount"))
        return report(mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(what, "unshare"))
        return report(unshare(CLONE_NEWNS));
    if (!strcmp(what, "userns"))
        return report(unshare(CLONE_NEWUSER));
    if (!strcmp(what, "ptrace") && argc > 2)
        return report(ptrace(PTRACE_ATTACH, atoi(argv[2]), 0, 0));
    if (!strcmp(what, "personality") && argc > 2)
        return report(syscall(SYS_personality, strtoul(argv[2], NULL, 0)));
    return 2;
}
