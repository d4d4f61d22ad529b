/*
 * proc.c - running other programs without a shell (see proc.h): the child's
 * environment, descriptors and account are prepared before fork(), and the
 * child makes only async-signal-safe calls before execve().
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include "proc.h"

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

void pgbank__proc_opts_init(pgbank__proc_opts *o)
{
    memset(o, 0, sizeof *o);
    o->cwd_fd = -1;
    o->out_fd = -1;
    o->err_fd = -1;
}

/* An fd >= 3, so that dup2 onto 0/1/2 in the child never meets itself. */
static int high_fd(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int h = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return h;
}

/* The child's environment: ours (without PG* unless asked) plus env_add. */
static char **child_env(const pgbank__proc_opts *o)
{
    size_t n = 0, extra = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    for (const char *const *a = o->env_add; a && *a; a++)
        extra++;
    char **env = calloc(n + extra + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (char **e = environ; e && *e; e++) {
        if (!o->keep_pg_env && strncmp(*e, "PG", 2) == 0)
            continue;
        int replaced = 0;
        for (const char *const *a = o->env_add; a && *a && !replaced; a++) {
            size_t len = strcspn(*a, "=");
            replaced = strncmp(*e, *a, len) == 0 && (*e)[len] == '=';
        }
        if (!replaced)
            env[k++] = *e;
    }
    for (const char *const *a = o->env_add; a && *a; a++)
        env[k++] = (char *)*a;
    env[k] = NULL;
    return env;
}

int pgbank__is_executable(const char *path)
{
    struct stat st;
    return path && *path && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           access(path, X_OK) == 0;
}

int pgbank__find_in_path(const char *name, char *out, size_t len)
{
    if (!out || len == 0)
        return 0;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && path[0] == '/') {
            int w = snprintf(out, len, "%.*s/%s", (int)n, path, name);
            if (w > 0 && (size_t)w < len && pgbank__is_executable(out))
                return 1;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    out[0] = '\0';
    return 0;
}

/* What a child could not do, sent to the parent through a pipe that
 * closes on exec: EOF means the program runs (or, without a program, that
 * every op was done). */
enum { STAGE_STDIO = 1, STAGE_CWD, STAGE_ACCOUNT, STAGE_OUTPUT, STAGE_OP, STAGE_EXEC };
typedef struct child_report {
    int stage;
    int err;   /* errno, or NOT_REGULAR */
    int index; /* which op, for STAGE_OP */
} child_report;
#define NOT_REGULAR (-1)

_Noreturn static void child_exit(int fd, int stage, int err, int index)
{
    child_report r = {stage, err, index};
    ssize_t w = write(fd, &r, sizeof r);
    (void)w;
    _exit(127);
}

static int write_all(int fd, const char *text)
{
    size_t n = strlen(text);
    while (n > 0) {
        ssize_t w = write(fd, text, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        text += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Opens name for writing without following a link, and only when it is a
 * regular file (O_NONBLOCK: a planted FIFO must not hang us). */
static int open_regular(const char *name, int flags)
{
    int fd = open(name, flags | O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = NOT_REGULAR;
        return -1;
    }
    fcntl(fd, F_SETFL, flags & O_APPEND);
    return fd;
}

/* One op, async-signal-safe; -1 with errno on failure. */
static int child_op(const pgbank__child_op *op)
{
    char tmp[PATH_MAX];
    size_t n;
    int fd, ok, e;
    switch (op->how) {
    case PGBANK__CHILD_REPLACE:
        n = strlen(op->name);
        if (n + sizeof ".new" > sizeof tmp) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(tmp, op->name, n);
        memcpy(tmp + n, ".new", sizeof ".new");
        if (unlink(tmp) != 0 && errno != ENOENT)
            return -1;
        if ((fd = open_regular(tmp, O_CREAT | O_EXCL)) < 0)
            return -1;
        ok = write_all(fd, op->text) == 0;
        e = errno;
        if (close(fd) != 0 && ok) {
            ok = 0;
            e = errno;
        }
        if (!ok || rename(tmp, op->name) != 0) {
            e = ok ? errno : e;
            unlink(tmp);
            errno = e;
            return -1;
        }
        return 0;
    case PGBANK__CHILD_APPEND:
        if ((fd = open_regular(op->name, O_APPEND)) < 0)
            return -1;
        ok = write_all(fd, op->text) == 0;
        e = errno;
        close(fd);
        errno = e;
        return ok ? 0 : -1;
    case PGBANK__CHILD_RENAME:
        return rename(op->name, op->text);
    case PGBANK__CHILD_SIGNAL:
        return kill(op->pid, op->sig);
    }
    errno = EINVAL;
    return -1;
}

/* Closes every descriptor from 3 up but `keep`. */
static void close_others(int keep, long maxfd)
{
#ifdef SYS_close_range
    if ((keep <= 3 || syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U) == 0) &&
        syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) == 0)
        return;
#endif
    for (long fd = 3; fd < maxfd; fd++)
        if (fd != keep)
            close((int)fd);
}

/* The child, from fork to execve: only async-signal-safe calls. */
_Noreturn static void child_main(char *const argv[], const char *prog, char **env,
                       const pgbank__proc_opts *o, int devnull, int out, int errfd,
                       int report, long maxfd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    int sigs[] = {SIGPIPE, SIGCHLD, SIGINT, SIGQUIT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &dfl, NULL);
    if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0)
        child_exit(report, STAGE_STDIO, errno, 0);
    if (o->cwd_fd >= 0 && fchdir(o->cwd_fd) != 0)
        child_exit(report, STAGE_CWD, errno, 0);
    /* Nothing of ours may outlive us in the child (a server started
     * through pg_ctl keeps what it inherits): above all no lock file. */
    close_others(report, maxfd);
    const pgbank__runas *ra = o->runas;
    if (ra && ra->drop &&
        (setgroups((size_t)ra->ngroups, ra->groups) != 0 || setgid(ra->gid) != 0 ||
         setuid(ra->uid) != 0))
        child_exit(report, STAGE_ACCOUNT, errno, 0);
    if (o->umask_077)
        umask(077);
    if (o->cwd && chdir(o->cwd) != 0)
        child_exit(report, STAGE_CWD, errno, 0);
    if (o->out_path) {
        int fresh = o->out_how == PGBANK__OUT_FRESH;
        if (fresh && unlink(o->out_path) != 0 && errno != ENOENT)
            child_exit(report, STAGE_OUTPUT, errno, 0);
        int fd = open_regular(o->out_path, O_CREAT | (fresh ? O_EXCL : O_APPEND));
        if (fd < 0 || dup2(fd, 1) < 0 || (o->err_fd == -2 && dup2(fd, 2) < 0))
            child_exit(report, STAGE_OUTPUT, errno, 0);
        close(fd);
    }
    for (size_t i = 0; i < o->nops; i++)
        if (child_op(&o->ops[i]) != 0)
            child_exit(report, STAGE_OP, errno, (int)i);
    if (!argv)
        _exit(0);
    execve(prog, argv, env);
    child_exit(report, STAGE_EXEC, errno, 0);
}

/* The parent's message for a child's report. */
static int report_error(const child_report *r, char *const argv[], const pgbank__proc_opts *o,
                        char *err, size_t errlen)
{
    char why[160], as[96] = "";
    if (r->err == NOT_REGULAR)
        snprintf(why, sizeof why, "it is not a regular file");
    else if (r->err == ELOOP)
        snprintf(why, sizeof why, "it is a symbolic link, and pgbank follows none there");
    else
        snprintf(why, sizeof why, "%s", strerror(r->err));
    if (o->runas && o->runas->drop)
        snprintf(as, sizeof as, " as '%s'", o->runas->name);
    const char *dir = o->cwd ? o->cwd : "its directory";
    switch (r->stage) {
    case STAGE_CWD:
        return pgbank__fail(PGBANK_ESYS, err, errlen, "could not enter %s%s: %s", dir, as, why);
    case STAGE_ACCOUNT:
        return pgbank__fail(PGBANK_ESYS, err, errlen, "could not switch to the account%s: %s",
                            as, why);
    case STAGE_OUTPUT:
        return pgbank__fail(PGBANK_ESYS, err, errlen, "could not open %s%s: %s", o->out_path, as,
                            why);
    case STAGE_OP: {
        static const char *const verbs[] = {"write", "append to", "rename", "signal"};
        const pgbank__child_op *op = &o->ops[r->index];
        if (op->how == PGBANK__CHILD_SIGNAL)
            return pgbank__fail(PGBANK_ESYS, err, errlen, "could not signal process %ld%s: %s",
                                (long)op->pid, as, why);
        return pgbank__fail(PGBANK_ESYS, err, errlen, "could not %s %s%s: %s",
                            verbs[op->how], op->name, as, why);
    }
    case STAGE_EXEC:
        return pgbank__fail(PGBANK_ESYS, err, errlen, "could not run %s%s: %s",
                            argv ? argv[0] : "?", as, why);
    default:
        return pgbank__fail(PGBANK_ESYS, err, errlen, "could not prepare a child's output: %s",
                            why);
    }
}

int pgbank__proc_spawn(char *const argv[], const pgbank__proc_opts *o, pid_t *pid, char *err,
                       size_t errlen)
{
    pgbank__proc_opts defaults;
    if (!o) {
        pgbank__proc_opts_init(&defaults);
        o = &defaults;
    }
    /* A bare name is looked up now: execve takes a path. */
    char found[PATH_MAX];
    const char *prog = argv ? argv[0] : NULL;
    if (prog && !strchr(prog, '/')) {
        if (!pgbank__find_in_path(prog, found, sizeof found))
            return pgbank__fail(PGBANK_ESYS, err, errlen, "%s: not found in PATH", prog);
        prog = found;
    }
    char **env = child_env(o);
    int devnull = high_fd(open("/dev/null", O_RDWR | O_CLOEXEC));
    int out = o->out_fd >= 0 && !o->out_path ? fcntl(o->out_fd, F_DUPFD_CLOEXEC, 3) : devnull;
    int errfd = o->err_fd == -2 ? out
                : o->err_fd >= 0 ? fcntl(o->err_fd, F_DUPFD_CLOEXEC, 3)
                                 : devnull;
    int rep[2] = {-1, -1};
    if (pipe(rep) == 0) {
        rep[0] = high_fd(rep[0]);
        rep[1] = high_fd(rep[1]);
        fcntl(rep[0], F_SETFD, FD_CLOEXEC);
        fcntl(rep[1], F_SETFD, FD_CLOEXEC);
    }
    long maxfd = sysconf(_SC_OPEN_MAX);
    if (maxfd < 0 || maxfd > 65536)
        maxfd = 65536;
    if (!env || devnull < 0 || out < 0 || errfd < 0 || rep[0] < 0 || rep[1] < 0) {
        int e = errno;
        free(env);
        if (devnull >= 0)
            close(devnull);
        if (out >= 0 && out != devnull)
            close(out);
        if (errfd >= 0 && errfd != devnull && errfd != out)
            close(errfd);
        for (int i = 0; i < 2; i++)
            if (rep[i] >= 0)
                close(rep[i]);
        return pgbank__fail(PGBANK_ESYS, err, errlen, "could not prepare to run %s: %s",
                            argv ? argv[0] : "a child", strerror(e));
    }
    pid_t p = fork();
    if (p == 0)
        child_main(argv, prog, env, o, devnull, out, errfd, rep[1], maxfd);
    int saved = errno;
    free(env);
    close(devnull);
    if (out != devnull)
        close(out);
    if (errfd != devnull && errfd != out)
        close(errfd);
    close(rep[1]);
    if (p < 0) {
        close(rep[0]);
        return pgbank__fail(PGBANK_ESYS, err, errlen, "fork: %s", strerror(saved));
    }
    child_report r;
    ssize_t n;
    do
        n = read(rep[0], &r, sizeof r);
    while (n < 0 && errno == EINTR);
    close(rep[0]);
    if (n == (ssize_t)sizeof r) {
        (void)pgbank__proc_wait(p, -1, NULL, NULL);
        return report_error(&r, argv, o, err, errlen);
    }
    *pid = p;
    return 0;
}

int pgbank__proc_ops(const pgbank__proc_opts *o, char *err, size_t errlen)
{
    pid_t pid;
    int rc = pgbank__proc_spawn(NULL, o, &pid, err, errlen);
    if (rc < 0)
        return rc;
    rc = pgbank__proc_wait(pid, -1, NULL, NULL);
    if (rc > 0)
        return pgbank__fail(PGBANK_ESYS, err, errlen, "a child doing pgbank's file work "
                            "exited with %d", rc);
    return 0;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int pgbank__proc_wait(pid_t pid, int timeout_ms, int *timed_out, struct rusage *ru)
{
    struct rusage dummy;
    if (!ru)
        ru = &dummy;
    memset(ru, 0, sizeof *ru);
    if (timed_out)
        *timed_out = 0;
    int st = 0;
    if (timeout_ms < 0) {
        for (;;) {
            pid_t w = wait4(pid, &st, 0, ru);
            if (w == pid)
                return decode_status(st);
            if (w < 0 && errno != EINTR)
                return -1;
        }
    }
    int64_t limit = pgbank__now_ns() + (int64_t)timeout_ms * 1000000;
    int signals = 0;
    for (;;) {
        pid_t w = wait4(pid, &st, WNOHANG, ru);
        if (w == pid)
            return decode_status(st);
        if (w < 0 && errno != EINTR)
            return -1;
        if (pgbank__now_ns() > limit && signals < 2) {
            kill(pid, signals ? SIGKILL : SIGTERM);
            signals++;
            if (timed_out)
                *timed_out = 1;
            limit = pgbank__now_ns() + 5000000000LL;
        }
        pgbank__sleep_ms(10);
    }
}

int pgbank__proc_run(char *const argv[], const pgbank__proc_opts *o, char *err, size_t errlen)
{
    pid_t pid;
    int rc = pgbank__proc_spawn(argv, o, &pid, err, errlen);
    if (rc < 0)
        return rc;
    rc = pgbank__proc_wait(pid, -1, NULL, NULL);
    /* -1 (ECHILD): the application ignores SIGCHLD and the child was reaped
     * for us; the caller checks the outcome by other means. */
    return rc < 0 ? 0 : rc;
}

int pgbank__proc_capture(char *const argv[], char *out, size_t len, int first_line)
{
    int pfd[2];
    if (len == 0 || pipe(pfd) != 0)
        return -1;
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    pgbank__proc_opts o;
    pgbank__proc_opts_init(&o);
    o.out_fd = pfd[1];
    o.keep_pg_env = 1;
    pid_t pid;
    int rc = pgbank__proc_spawn(argv, &o, &pid, NULL, 0);
    close(pfd[1]);
    size_t got = 0;
    if (rc == 0) {
        char tmp[512];
        for (;;) {
            ssize_t n = read(pfd[0], tmp, sizeof tmp);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            for (ssize_t i = 0; i < n && got + 1 < len; i++)
                out[got++] = tmp[i];
        }
    }
    close(pfd[0]);
    out[got] = '\0';
    if (first_line)
        out[strcspn(out, "\r\n")] = '\0';
    return rc == 0 ? pgbank__proc_wait(pid, -1, NULL, NULL) : -1;
}

static int has_all(const char *dir, const char *const *need)
{
    char p[PATH_MAX + 64];
    for (const char *const *n = need; *n; n++)
        if (snprintf(p, sizeof p, "%s/%s", dir, *n) >= (int)sizeof p || !pgbank__is_executable(p))
            return 0;
    return 1;
}

static int take(const char *dir, char *out, size_t len)
{
    if (strlen(dir) >= len)
        return 0;
    strcpy(out, dir);
    return 1;
}

int pgbank__pg_bindir(const char *major, const char *const *need, char *out, size_t len)
{
    char p[PATH_MAX + 64];
    if (major && *major) {
        snprintf(p, sizeof p, "/usr/lib/postgresql/%s/bin", major);
        if (has_all(p, need))
            return take(p, out, len);
    }
    /* The first pg_config in PATH is the one that counts. */
    char cfg[PATH_MAX];
    if (pgbank__find_in_path("pg_config", cfg, sizeof cfg)) {
        char *argv[] = {cfg, "--bindir", NULL};
        if (pgbank__proc_capture(argv, p, sizeof p, 1) == 0 && p[0] == '/' && has_all(p, need))
            return take(p, out, len);
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof p && path[0] == '/') {
            memcpy(p, path, n);
            p[n] = '\0';
            if (has_all(p, need))
                return take(p, out, len);
        }
        path += n;
        if (*path == ':')
            path++;
    }
    static const char *const patterns[] = {"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"};
    for (size_t i = 0; i < 2; i++) {
        glob_t g;
        if (glob(patterns[i], 0, NULL, &g) != 0)
            continue;
        long best = -1;
        for (size_t k = 0; k < g.gl_pathc; k++) {
            const char *v = g.gl_pathv[k] + strcspn(g.gl_pathv[k], "0123456789");
            long m = strtol(v, NULL, 10);
            if (m > best && has_all(g.gl_pathv[k], need)) {
                best = m;
                pgbank__strlcpy(p, g.gl_pathv[k], sizeof p);
            }
        }
        globfree(&g);
        if (best >= 0)
            return take(p, out, len);
    }
    if (has_all("/usr/local/pgsql/bin", need))
        return take("/usr/local/pgsql/bin", out, len);
    return 0;
}
