/* nabla tune across MPI ranks (tune_mpi.h).  Messages: rank 0 sends CHECK
 * (the directory), JOB ("TRIAL\0DIR\0" then the arguments, each ending in
 * NUL), INT and STOP; a worker answers CHECK with "" or its error and a JOB
 * with DONE (the job's wait status).  Workers poll, so that a signal or a
 * message from rank 0 is seen while a trial runs. */
#define _POSIX_C_SOURCE 200809L
#include "tune_mpi.h"

#ifdef NB_HAVE_MPI
#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

enum { TAG_CHECK = 1, TAG_JOB, TAG_DONE, TAG_INT, TAG_STOP, MAX_RANKS = 65536 };

static unsigned char busy[MAX_RANKS];
static volatile sig_atomic_t signalled;

static void on_signal(int sig) {
    (void)sig;
    signalled = 1;
}

/* 5 ms: -1 with errno EINTR when a signal cut it short */
static int nap(void) {
    struct timespec ts = {0, 5000000};
    return nanosleep(&ts, NULL);
}

int tune_mpi_size(void) {
    int inited = 0, size = 1;
    MPI_Initialized(&inited);
    if (inited) MPI_Comm_size(MPI_COMM_WORLD, &size);
    return size;
}

static int rank_of_this(void) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

/* ------------------------------------------------------------ workers */

static void reply_check(const char *dir) {
    char path[4200], msg[8800], host[256] = "?", cwd[4096] = "?";
    snprintf(path, sizeof path, "%s/search.json", dir);
    msg[0] = '\0';
    if (access(path, R_OK) != 0) {
        int e = errno;
        gethostname(host, sizeof host);
        host[sizeof host - 1] = '\0';
        if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, "?");
        snprintf(msg, sizeof msg, "rank %d on %s (working directory %s) cannot read %s: %s: "
                 "--out must be on a filesystem that every node shares, at the same path "
                 "(docs/tune.md)", rank_of_this(), host, cwd, path, strerror(e));
    }
    MPI_Send(msg, (int)strlen(msg) + 1, MPI_CHAR, 0, TAG_CHECK, MPI_COMM_WORLD);
}

/* A JOB message: started as a local job; its pid, or -1 (said why). */
static pid_t start_job(char *msg, int len) {
    char *argv[TUNE_MAX_ARGS + 1], *parts[TUNE_MAX_ARGS + 2];
    int n = 0;
    for (char *p = msg; p < msg + len && n < TUNE_MAX_ARGS + 2; p += strlen(p) + 1)
        parts[n++] = p;
    if (n < 4) {
        fprintf(stderr, "nabla tune: rank %d: a damaged job message\n", rank_of_this());
        return -1;
    }
    for (int i = 2; i < n; i++) argv[i - 2] = parts[i];
    argv[n - 2] = NULL;
    int trial = atoi(parts[0]);
    pid_t pid = tune_job_spawn(parts[1], trial, argv);
    if (pid < 0)
        fprintf(stderr, "nabla tune: rank %d: cannot start trial %d in %s: %s\n", rank_of_this(),
                trial + 1, parts[1], strerror(errno));
    return pid;
}

static void send_done(int status) {
    MPI_Send(&status, 1, MPI_INT, 0, TAG_DONE, MPI_COMM_WORLD);
}

static void end_child(pid_t child) {
    int status;
    kill(child, SIGINT);
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
}

/* One message from rank 0; 1: STOP. */
static int handle(MPI_Status *st, pid_t *child) {
    int len = 0;
    MPI_Get_count(st, MPI_CHAR, &len);
    char *msg = malloc((size_t)len + 1);
    if (!msg) MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Recv(msg, len, MPI_CHAR, 0, st->MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    msg[len] = '\0';
    int stop = st->MPI_TAG == TAG_STOP;
    if (st->MPI_TAG == TAG_CHECK) reply_check(msg);
    else if (st->MPI_TAG == TAG_JOB && *child == 0) {
        *child = start_job(msg, len);
        if (*child < 0) *child = 0, send_done(127 << 8); /* as a child's exit 127 */
    } else if (st->MPI_TAG == TAG_INT && *child > 0) {
        kill(*child, SIGINT);
    }
    free(msg);
    return stop;
}

int tune_mpi_worker(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pid_t child = 0;
    int forwarded = 0;
    for (;;) {
        int flag = 0, status;
        MPI_Status st;
        MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (flag && handle(&st, &child)) break;
        if (signalled && child > 0 && !forwarded) kill(child, SIGINT), forwarded = 1;
        if (child > 0 && waitpid(child, &status, WNOHANG) == child) {
            child = 0;
            send_done(status);
        }
        if (!flag) nap();
    }
    if (child > 0) end_child(child);
    return 0;
}

/* ------------------------------------------------------------ rank 0 */

int tune_mpi_check_dir(const char *dir) {
    int size = tune_mpi_size(), rc = 0;
    for (int r = 1; r < size; r++)
        MPI_Send(dir, (int)strlen(dir) + 1, MPI_CHAR, r, TAG_CHECK, MPI_COMM_WORLD);
    for (int r = 1; r < size; r++) {
        char msg[8800];
        MPI_Recv(msg, (int)sizeof msg, MPI_CHAR, r, TAG_CHECK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        msg[sizeof msg - 1] = '\0';
        if (msg[0] && !rc) rc = cli_fail("tune", "%s", msg);
    }
    return rc;
}

int tune_mpi_submit(const tune_job *j) {
    static tune_argv b;
    static char msg[TUNE_ARG_SPACE + 4400];
    int size = tune_mpi_size(), rank = 1;
    while (rank < size && rank < MAX_RANKS && busy[rank]) rank++;
    if (rank >= size || rank >= MAX_RANKS) return cli_fail("tune", "no free rank"), -1;
    tune_job_argv(j, "nabla", &b);
    int head = snprintf(msg, sizeof msg, "%d%c%s", j->trial, '\0', j->dir) + 1;
    if (head >= (int)sizeof msg - (int)b.used)
        return cli_fail("tune", "--out %s: the path is too long", j->dir), -1;
    memcpy(msg + head, b.space, b.used);
    MPI_Send(msg, head + (int)b.used, MPI_CHAR, rank, TAG_JOB, MPI_COMM_WORLD);
    busy[rank] = 1;
    return rank;
}

int tune_mpi_wait(int *status) {
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_DONE, MPI_COMM_WORLD, &flag, &st);
        if (flag) {
            MPI_Recv(status, 1, MPI_INT, st.MPI_SOURCE, TAG_DONE, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            busy[st.MPI_SOURCE] = 0;
            return st.MPI_SOURCE;
        }
        if (nap() != 0 && errno == EINTR) return -1;
    }
}

void tune_mpi_interrupt(int rank) {
    MPI_Send("", 1, MPI_CHAR, rank, TAG_INT, MPI_COMM_WORLD);
}

void tune_mpi_stop(void) {
    int size = tune_mpi_size();
    for (int r = 1; r < size; r++) MPI_Send("", 1, MPI_CHAR, r, TAG_STOP, MPI_COMM_WORLD);
}

#else /* without MPI the program is always alone (dist_launch refuses the rest) */
int tune_mpi_size(void) { return 1; }
int tune_mpi_worker(void) { return 0; }
int tune_mpi_check_dir(const char *dir) { return (void)dir, 0; }
int tune_mpi_submit(const tune_job *j) { return (void)j, -1; }
int tune_mpi_wait(int *status) { return (void)status, -1; }
void tune_mpi_interrupt(int rank) { (void)rank; }
void tune_mpi_stop(void) {}
#endif
