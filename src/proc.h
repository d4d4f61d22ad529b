/*
 * proc.h - running other programs: PostgreSQL's server programs for the
 * private server, pgbench and gnuplot for the command line's lab.  Never a
 * shell: fork + execve on argument vectors prepared before the fork, with
 * nothing but async-signal-safe calls between the two.  Internal to pgbank
 * (the library and its command-line tool); not installed.
 */
#ifndef PGBANK_PROC_H
#define PGBANK_PROC_H

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

/* Who a child runs as.  drop = 0: ourselves. */
typedef struct pgbank__runas {
    int drop; /* 1: switch to uid/gid/groups in the child, before exec */
    uid_t uid;
    gid_t gid;
    char name[64]; /* for messages */
    gid_t groups[64];
    int ngroups;
} pgbank__runas;

/* What a child does with its own rights, after it switched to its account
 * and entered its working directory, before it runs its program (or
 * instead of one): so the private server's account writes the files of its
 * own directory, and a link it planted there can only ever redirect its
 * own writes, never root's.  Names are relative to the working directory;
 * every call is async-signal-safe (open, write, rename, kill). */
typedef enum pgbank__child_how {
    /* text into "name.new" (made afresh, never through a link), then
     * renamed over name: a link at name is replaced, not followed. */
    PGBANK__CHILD_REPLACE,
    /* text appended to name, which must exist and not be a link */
    PGBANK__CHILD_APPEND,
    /* name renamed to text */
    PGBANK__CHILD_RENAME,
    /* kill(pid, sig) */
    PGBANK__CHILD_SIGNAL,
} pgbank__child_how;

typedef struct pgbank__child_op {
    pgbank__child_how how;
    const char *name;
    const char *text;
    pid_t pid;
    int sig;
} pgbank__child_op;

/* How the child opens out_path. */
enum {
    PGBANK__OUT_APPEND = 0, /* appended to, created when missing */
    PGBANK__OUT_FRESH = 1   /* removed first, then created empty */
};

typedef struct pgbank__proc_opts {
    const pgbank__runas *runas; /* NULL: ourselves */
    const char *cwd;            /* NULL: unchanged */
    /* >= 0: the child's working directory, entered by descriptor (before
     * cwd, if both are given): a directory checked once, never re-resolved. */
    int cwd_fd;
    int out_fd;                 /* the child's stdout; -1: /dev/null */
    int err_fd;                 /* the child's stderr; -1: /dev/null, -2: as stdout */
    /* Non-NULL: the child's stdout, opened BY THE CHILD after switching
     * account, relative to its working directory, never through a link
     * (out_fd is then ignored); out_how says how. */
    const char *out_path;
    int out_how;
    /* Done by the child, in order, before exec; the first failure ends it. */
    const pgbank__child_op *ops;
    size_t nops;
    /* 1: the child keeps our PG* environment variables; 0 (the default):
     * they are removed, since they would redirect a server program
     * (PGDATA, PGPORT, PGHOST ...). */
    int keep_pg_env;
    /* Extra "NAME=value" entries (NULL-terminated), or NULL. */
    const char *const *env_add;
    int umask_077; /* 1: umask(077) in the child */
} pgbank__proc_opts;

/* Options with every field at its default (/dev/null out and err). */
void pgbank__proc_opts_init(pgbank__proc_opts *o);

/* Starts argv[0] (a path; searched in $PATH when it has no '/').  argv may
 * be NULL: the child then only does o->ops and exits 0.  Returns 0 and sets
 * *pid once the program runs, or PGBANK_ESYS with the reason in err (the
 * child reports what it could not do - enter the directory, switch
 * account, open its output, an op, exec - through a pipe, and is reaped). */
int pgbank__proc_spawn(char *const argv[], const pgbank__proc_opts *o, pid_t *pid, char *err,
                       size_t errlen);

/* Waits for pid.  timeout_ms < 0: no limit; when it passes, SIGTERM, then
 * SIGKILL 5 s later, and *timed_out = 1 (timed_out may be NULL).  ru (may be
 * NULL) receives the child's resource usage.  Returns its exit status,
 * 128 + N when killed by signal N, or -1 when it cannot be waited for (an
 * application that ignores SIGCHLD reaps it itself). */
int pgbank__proc_wait(pid_t pid, int timeout_ms, int *timed_out, struct rusage *ru);

/* Spawn and wait, no time limit.  Returns the exit status (as above) or a
 * negative PGBANK_E* code with the reason in err. */
int pgbank__proc_run(char *const argv[], const pgbank__proc_opts *o, char *err, size_t errlen);

/* The ops alone, in a child with o's account and directory (argv NULL).
 * Returns 0 or PGBANK_ESYS with the reason in err. */
int pgbank__proc_ops(const pgbank__proc_opts *o, char *err, size_t errlen);

/* Runs argv (stderr to /dev/null) and reads its stdout into out (at most
 * len - 1 bytes, NUL-terminated; with first_line only the first line, no
 * newline).  Returns the exit status, or -1 when it could not run. */
int pgbank__proc_capture(char *const argv[], char *out, size_t len, int first_line);

/* 1 when path names an executable regular file. */
int pgbank__is_executable(const char *path);

/* The first executable `name` in $PATH, into out.  Returns 1 when found. */
int pgbank__find_in_path(const char *name, char *out, size_t len);

/* The directory of PostgreSQL's programs: where `need` (NULL-terminated
 * names, e.g. {"initdb", "pg_ctl", "postgres", NULL}) all live.  Tried in
 * order: /usr/lib/postgresql/<major>/bin when major is given, the bindir
 * of the first pg_config in $PATH, the directories of $PATH, the newest
 * /usr/lib/postgresql/N/bin and /usr/pgsql-N/bin, /usr/local/pgsql/bin.
 * Returns 1 when found. */
int pgbank__pg_bindir(const char *major, const char *const *need, char *out, size_t len);

#endif
