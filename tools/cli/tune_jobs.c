/* Child processes of nabla tune: fork, then exec this same program. */
#define _GNU_SOURCE /* prctl */
#include "tune_jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "tune_report.h"

static void arg(tune_argv *b, const char *s) {
    size_t n = strlen(s) + 1;
    if (b->n >= TUNE_MAX_ARGS - 1 || b->used + n > TUNE_ARG_SPACE) return; /* bounded by the space file */
    b->argv[b->n++] = memcpy(b->space + b->used, s, n);
    b->used += n;
    b->argv[b->n] = NULL;
}

static void argf(tune_argv *b, const char *fmt, const char *a, const char *c) {
    char buf[8600];
    snprintf(buf, sizeof buf, fmt, a, c);
    arg(b, buf);
}

void tune_job_argv(const tune_job *j, const char *exe, tune_argv *b) {
    const tune_space *s = j->space;
    char path[4200], num[64];
    b->n = 0;
    b->used = 0;
    arg(b, exe);
    arg(b, "train");
    arg(b, j->model);
    argf(b, "--data=%s%s", s->data, "");
    if (s->val) argf(b, "--val=%s%s", s->val, "");
    snprintf(num, sizeof num, "--val-split=%.17g", s->val_split);
    if (s->val_split > 0) arg(b, num);
    snprintf(num, sizeof num, "--epochs=%d", j->epochs);
    arg(b, num);
    snprintf(num, sizeof num, "--seed=%ld", tune_trial_seed(s, j->trial));
    arg(b, num);
    snprintf(num, sizeof num, "--threads=%d", j->threads);
    arg(b, num);
    for (int p = 0; p < s->n_params; p++) {
        const char *v = j->values[p];
        if (s->params[p].flag) argf(b, "%s=%s", s->params[p].flag, v);
        else {
            arg(b, "--set");
            argf(b, "%s=%s", s->params[p].name, v);
        }
    }
    tune_trial_path(path, sizeof path, j->dir, j->trial, "ckpt");
    argf(b, "--checkpoint=%s%s", path, "");
    struct stat st;
    if (stat(path, &st) == 0) argf(b, "--resume=%s%s", path, "");
    tune_trial_path(path, sizeof path, j->dir, j->trial, "csv");
    argf(b, "--log=%s%s", path, "");
    if (j->out) argf(b, "--out=%s%s", j->out, "");
}

static int own_path(char *exe, size_t size) {
    ssize_t n = readlink("/proc/self/exe", exe, size - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    return 0;
}

pid_t tune_job_start(const tune_job *j) {
    static tune_argv b;
    char exe[4096];
    if (own_path(exe, sizeof exe)) return -1;
    tune_job_argv(j, exe, &b);
    return tune_job_spawn(j->dir, j->trial, b.argv);
}

pid_t tune_job_spawn(const char *dir, int trial, char **argv) {
    char exe[4096], out[4200];
    if (own_path(exe, sizeof exe)) return -1;
    argv[0] = exe;
    tune_trial_path(out, sizeof out, dir, trial, "out");
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return -1;
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
#ifdef __linux__
        /* a search killed outright takes its trials with it: no orphan keeps
         * training (and holding the trial's lock) for a --resume to trip on */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(127);
#else
        (void)parent;
#endif
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(127);
        execv(exe, argv);
        _exit(127);
    }
    int e = errno;
    close(fd);
    errno = e;
    return pid;
}

void tune_job_last_line(const char *dir, int trial, char *buf, size_t size) {
    char path[4200], line[1024];
    tune_trial_path(path, sizeof path, dir, trial, "out");
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (line[0] != '\n') snprintf(buf, size, "%s", line);
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}
