/*
 * faults.c - the faults of a lab run (see faults.h): backend terminations
 * through the control connection, and crashes of the private server
 * (pgbank_server_kill) with its restart in a child process.
 */
#include "faults.h"

#include "internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a crashed server may take to exit, and a restart to finish. */
#define CRASH_EXIT_LIMIT_NS ((int64_t)30 * 1000000000)
#define RESTART_TRIES 3

enum { CRASH_NONE, CRASH_EXITING, CRASH_RESTARTING };

/* snprintf that may truncate (messages), without the compiler's worry. */
static void say(char *dst, size_t n, const char *fmt, ...) CLI_PRINTF(3, 4);
static void say(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static int64_t between(lab_faults *f, int64_t lo, int64_t hi)
{
    return lo + (int64_t)pgbank__rand_below(f->rng, (uint64_t)(hi - lo + 1));
}

static void failed(lab_faults *f, const char *what, const char *why)
{
    f->failures++;
    say(f->error, sizeof f->error, "%s: %s", what, why);
}

static void terminate(lab_faults *f)
{
    char err[512];
    const char *p[1] = {f->schema->appname};
    PGresult *r = lab_query(f->schema,
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE application_name = $1 AND pid <> pg_backend_pid()",
                            1, p, err, sizeof err);
    if (!r) {
        failed(f, "terminate", err);
        return;
    }
    f->terminations++;
    f->backends_killed += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
}

/* SIGQUIT to the postmaster: `pg_ctl stop -m immediate`, no checkpoint. */
static void crash(lab_faults *f)
{
    char err[512] = "";
    if (pgbank_server_kill(f->data_dir, SIGQUIT, err, sizeof err) != 0) {
        failed(f, "crash", err);
        return;
    }
    f->crashes++;
    f->crash_state = CRASH_EXITING;
    f->crash_t0 = pgbank__now_ns();
    f->restart_tries = 0;
}

/* Whether the crashed postmaster is gone: it removes its pid file last on
 * its way out (it may linger as a zombie, so that signal 0 reaches it
 * proves nothing), and only then can the server start again. */
static int postmaster_gone(const lab_faults *f)
{
    char err[256];
    return pgbank_server_kill(f->data_dir, 0, err, sizeof err) == PGBANK_ENOTFOUND;
}

/* The restart runs in a child, so the clients meet a server that is down
 * (connections refused, operations ending in database errors and unknown
 * outcomes) rather than one that only paused. */
static void restart(lab_faults *f)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        char err[1024];
        int rc = pgbank_server_start(f->data_dir, err, sizeof err);
        if (rc != 0) {
            char line[1200];
            int n = snprintf(line, sizeof line, "pgbank chaos: restart failed: %s\n", err);
            if (n > 0 && write(2, line, (size_t)n) < 0)
                _exit(2);
        }
        _exit(rc == 0 ? 0 : 1);
    }
    if (pid < 0) {
        snprintf(f->fatal, sizeof f->fatal, "could not fork to restart the server: %s",
                 strerror(errno));
        return;
    }
    f->restart_pid = pid;
    f->restart_tries++;
    f->crash_state = CRASH_RESTARTING;
}

/* Advances a crash: wait for the postmaster to be gone, then restart. */
static void crash_step(lab_faults *f, int block)
{
    for (;;) {
        if (f->crash_state == CRASH_EXITING) {
            if (postmaster_gone(f)) {
                restart(f);
                continue;
            }
            if (pgbank__now_ns() - f->crash_t0 > CRASH_EXIT_LIMIT_NS) {
                snprintf(f->fatal, sizeof f->fatal,
                         "the crashed server did not exit within 30 s");
                f->crash_state = CRASH_NONE;
                return;
            }
        } else if (f->crash_state == CRASH_RESTARTING) {
            int st;
            pid_t r = waitpid(f->restart_pid, &st, block ? 0 : WNOHANG);
            if (r == f->restart_pid || (r < 0 && errno == ECHILD)) {
                int ok = r < 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0);
                if (ok || f->restart_tries >= RESTART_TRIES) {
                    if (!ok)
                        say(f->fatal, sizeof f->fatal,
                            "the private server in %s could not be restarted "
                            "(see its server.log)", f->data_dir);
                    f->crash_state = CRASH_NONE;
                    f->downtime_ns += pgbank__now_ns() - f->crash_t0;
                    /* The crash ended the control connection's session and
                     * its lock on the schema: take it back at once, before
                     * another lab run could take the schema for a dead
                     * run's. */
                    char err[256];
                    PQclear(lab_query(f->schema, "SELECT 1", 0, NULL, err, sizeof err));
                    return;
                }
                restart(f);
                continue;
            }
            if (r < 0 && errno != EINTR) {
                snprintf(f->fatal, sizeof f->fatal, "waitpid: %s", strerror(errno));
                f->crash_state = CRASH_NONE;
                return;
            }
        } else {
            return;
        }
        if (!block)
            return;
        pgbank__sleep_ms(5);
    }
}

/* Faults come every 1-4 s, shortened for short runs so that a run of a
 * few seconds still sees each kind. */
static int64_t interval(lab_faults *f)
{
    int64_t hi = f->duration_ns / 4, lo = f->duration_ns / 8;
    if (hi > (int64_t)4000000000)
        hi = 4000000000;
    if (lo > (int64_t)1000000000)
        lo = 1000000000;
    if (lo < 50000000)
        lo = 50000000;
    if (hi < lo)
        hi = lo;
    return between(f, lo, hi);
}

static void inject(lab_faults *f)
{
    int kind = f->kinds;
    if (kind == (LAB_FAULT_TERMINATE | LAB_FAULT_CRASH))
        kind = f->seq == 0 ? LAB_FAULT_TERMINATE
               : f->seq == 1 ? LAB_FAULT_CRASH
               : pgbank__rand_below(f->rng, 3) == 0 ? LAB_FAULT_CRASH
                                                      : LAB_FAULT_TERMINATE;
    f->seq++;
    if (kind == LAB_FAULT_CRASH)
        crash(f);
    else
        terminate(f);
}

void lab_faults_start(lab_faults *f, int64_t now)
{
    f->next_ns = f->kinds ? now + interval(f) : 0;
}

int64_t lab_faults_step(lab_faults *f, int64_t now, int stopping)
{
    if (f->crash_state != CRASH_NONE)
        crash_step(f, 0);
    if (!stopping && f->next_ns && now >= f->next_ns) {
        if (f->crash_state == CRASH_NONE)
            inject(f);
        f->next_ns = pgbank__now_ns() + interval(f);
    }
    /* A crash is watched closely: the restart starts once the old
     * postmaster is gone. */
    if (f->crash_state != CRASH_NONE)
        return now + 5000000;
    return stopping ? 0 : f->next_ns;
}

int lab_faults_busy(const lab_faults *f) { return f->crash_state != CRASH_NONE; }

void lab_faults_settle(lab_faults *f)
{
    if (f->crash_state != CRASH_NONE)
        crash_step(f, 1);
}
