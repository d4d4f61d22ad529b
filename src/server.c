/*
 * server.c - the private PostgreSQL server (the embedded default): one
 * cluster per data directory D, reachable only through the unix socket
 * inside D (mode 0700, no TCP), initialised on first use, started on demand
 * and reused by every pgbank process that finds it running.  This file is
 * cluster control and the public API; the directory as a boundary is
 * datadir.c, the server account and its way in is account.c (server.h).
 *
 * Layout of D:  pgdata/ (the cluster)  .s.PGSQL.5432 (the socket)
 *               pgbank.lock (flock: one starter at a time)
 *               server.log (postgres and pg_ctl)  initdb.log
 *               server.id (which postgres program the server runs)
 *
 * trust authentication is safe only because the socket sits in a directory
 * nobody else can enter (D is 0700) and pg_hba.conf, rewritten at every
 * start, admits the socket alone: no TCP line, whatever listen_addresses.
 *
 * initdb refuses to run as root, so as root the server programs run as an
 * unprivileged account (postgres, or $PGBANK_SERVER_USER), and that account
 * also writes every file in D (proc.h's child ops): root only reads there,
 * through descriptors, never following a link.
 */
#include "internal.h"
#include "sqlstate.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SERVER_PORT PGBANK__SERVER_PORT
#define SERVER_USER "pgbank"
#define SERVER_DB "pgbank"
/* The identity of the postgres program the running server started from. */
#define ID_NAME "server.id"

typedef pgbank__srv srv;

static int is_initialised(const srv *s)
{
    int fd = pgbank__open_in(s, "pgdata/PG_VERSION");
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

/* The pid in pgdata/postmaster.pid, or 0. */
static long postmaster_pid(const srv *s)
{
    char buf[64];
    if (pgbank__read_in(s, "pgdata/postmaster.pid", buf, sizeof buf) <= 0)
        return 0;
    long pid = strtol(buf, NULL, 10);
    return pid > 1 && pid <= INT_MAX ? pid : 0;
}

/* Running: postmaster.pid names a live process and the socket exists.
 * Cheap on purpose (no fork, no connection): this is the reuse path. */
static int is_running(const srv *s)
{
    long pid = postmaster_pid(s);
    struct stat st;
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM))
        return 0;
    return fstatat(s->dfd, PGBANK__SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISSOCK(st.st_mode);
}

/* --- Running the server programs --------------------------------------- */

/* Runs argv (or, when NULL, only ops) as `ra`, in D entered through its
 * descriptor; its output goes to `out` in D (opened by the child, as ra),
 * or nowhere.  Returns the exit status, or PGBANK_ESERVER with err. */
static int run_in_dir(char *const argv[], const srv *s, const pgbank__runas *ra,
                      const char *out, int out_how, const pgbank__child_op *ops, size_t nops,
                      char *err, size_t errlen)
{
    pgbank__proc_opts o;
    pgbank__proc_opts_init(&o);
    o.runas = ra;
    o.cwd_fd = s->dfd;
    o.out_path = out;
    o.out_how = out_how;
    o.err_fd = -2;
    o.umask_077 = 1;
    o.ops = ops;
    o.nops = nops;
    char why[512];
    int rc = pgbank__proc_run(argv, &o, why, sizeof why);
    if (rc < 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "%s (in %s)", why, s->dir);
    return rc;
}

static int has_programs(const char *dir)
{
    static const char *const need[] = {"initdb", "pg_ctl", "postgres"};
    char p[PATH_MAX + 16];
    for (size_t i = 0; i < 3; i++)
        if (snprintf(p, sizeof p, "%s/%s", dir, need[i]) >= (int)sizeof p ||
            !pgbank__is_executable(p))
            return 0;
    return 1;
}

/* The directory of initdb, pg_ctl and postgres: $PGBANK_PG_BINDIR, else
 * found (proc.h).  A cluster only starts with its own major version, so an
 * existing one's version comes first. */
static int find_bindir(const srv *s, char *out, size_t len, char *err, size_t errlen)
{
    static const char *const need[] = {"initdb", "pg_ctl", "postgres", NULL};
    const char *env = getenv("PGBANK_PG_BINDIR");
    if (env && *env) {
        if (env[0] == '/' && has_programs(env) && strlen(env) < len) {
            pgbank__strlcpy(out, env, len);
            return 0;
        }
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "PGBANK_PG_BINDIR is %s, which is not an absolute directory "
                            "holding initdb, pg_ctl and postgres; fix or unset it",
                            env);
    }
    char ver[32] = "";
    if (pgbank__read_in(s, "pgdata/PG_VERSION", ver, sizeof ver) > 0)
        ver[strspn(ver, "0123456789.")] = '\0';
    if (pgbank__pg_bindir(ver, need, out, len))
        return 0;
    return pgbank__fail(PGBANK_ESERVER, err, errlen,
                        "PostgreSQL server programs (initdb, pg_ctl, postgres) "
                        "not found: tried pg_config --bindir, $PATH, "
                        "/usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, "
                        "/usr/local/pgsql/bin; install them (apt-get install "
                        "postgresql) or put their directory on PATH");
}

/* --- The installed PostgreSQL changing under a running server ---------- */

/* "dev ino size mtime_s mtime_ns path\n" of bindir/postgres: a package
 * upgrade replaces the file, so any of the numbers changes. */
static void program_identity(const char *bindir, char *out, size_t len)
{
    char p[PATH_MAX + 16];
    struct stat st;
    snprintf(p, sizeof p, "%s/postgres", bindir);
    if (stat(p, &st) != 0) {
        out[0] = '\0';
        return;
    }
    snprintf(out, len, "%ju %ju %jd %jd %ld %s\n", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
             (intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec, p);
}

/* 1 when the postgres program the running server started from has been
 * replaced since (its path into `what`).  One read and one stat: the reuse
 * path stays without fork or connection.  No record (a server started by
 * an older pgbank) or a program gone missing: 0, the server is left be. */
static int program_changed(const srv *s, char *what, size_t len)
{
    char rec[PATH_MAX + 128], now[PATH_MAX + 128];
    uintmax_t dev, ino;
    intmax_t size, sec;
    long nsec;
    int at = 0;
    if (pgbank__read_in(s, ID_NAME, rec, sizeof rec) <= 0 ||
        sscanf(rec, "%ju %ju %jd %jd %ld %n", &dev, &ino, &size, &sec, &nsec, &at) != 5 ||
        at <= 0 || rec[at] != '/')
        return 0;
    char *path = rec + at;
    path[strcspn(path, "\n")] = '\0';
    char *slash = strrchr(path, '/');
    *slash = '\0';
    program_identity(path, now, sizeof now);
    *slash = '/';
    if (!now[0] || strncmp(rec, now, (size_t)at) == 0)
        return 0;
    pgbank__strlcpy(what, path, len);
    return 1;
}

/* --- Start, stop ---------------------------------------------------------- */

static int remove_partial(const srv *s, const pgbank__runas *ra, char *err, size_t errlen)
{
    char *argv[] = {"rm", "-rf", "--", "pgdata.init", NULL};
    int rc = run_in_dir(argv, s, ra, NULL, 0, NULL, 0, err, errlen);
    if (rc > 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "could not remove a leftover %s/pgdata.init (rm exit %d)", s->dir, rc);
    return rc;
}

/* initdb into D/pgdata.init, then rename: a killed initdb never leaves a
 * half-made D/pgdata that looks initialised. */
static int init_cluster(const srv *s, const pgbank__runas *ra, const char *bindir,
                        char *err, size_t errlen)
{
    char tmp[PATH_MAX + 16], prog[PATH_MAX + 16];
    struct stat st;
    snprintf(tmp, sizeof tmp, "%s/pgdata.init", s->dir);
    snprintf(prog, sizeof prog, "%s/initdb", bindir);
    int rc = 0;
    if (fstatat(s->dfd, "pgdata.init", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (rc = remove_partial(s, ra, err, errlen)) != 0)
        return rc;
    /* No TCP in pg_hba.conf from the start; start_cluster rewrites it. */
    char *argv[] = {prog, "-D", tmp, "-U", SERVER_USER, "--auth-local=trust",
                    "--auth-host=reject", "-E", "UTF8", "--no-locale", NULL};
    rc = run_in_dir(argv, s, ra, "initdb.log", PGBANK__OUT_FRESH, NULL, 0, err, errlen);
    if (rc < 0)
        return rc;
    if (rc != 0) {
        char tail[512];
        pgbank__log_tail(s, "initdb.log", tail, sizeof tail);
        (void)remove_partial(s, ra, NULL, 0);
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "initdb failed (exit %d); %s/initdb.log says: %s", rc, s->dir, tail);
    }
    /* Path-independent settings, once.  The socket directory goes in
     * pgbank.conf, rewritten at each start, so a moved D keeps working. */
    static const char settings[] =
        "\n# pgbank's private server: no TCP, only the unix socket in the data\n"
        "# directory (named in pgbank.conf); room for pgbank's pools.\n"
        "listen_addresses = ''\n"
        "port = " SERVER_PORT "\n"
        "max_connections = 300\n"
        "include_if_exists = 'pgbank.conf'\n";
    const pgbank__child_op ops[] = {
        {PGBANK__CHILD_APPEND, "pgdata.init/postgresql.conf", settings, 0, 0},
        {PGBANK__CHILD_RENAME, "pgdata.init", "pgdata", 0, 0},
    };
    return run_in_dir(NULL, s, ra, NULL, 0, ops, 2, err, errlen);
}

/* unix_socket_directories = '"D"': double quotes for the list syntax
 * (spaces), then the config file's single-quoted string rules. */
static void socket_conf(const srv *s, char *text, size_t len)
{
    size_t o = (size_t)snprintf(text, len, "unix_socket_directories = '\"");
    for (const char *p = s->dir; *p && o + 8 < len; p++) {
        if (*p == '\'')
            text[o++] = '\'';
        text[o++] = *p;
    }
    snprintf(text + o, len - o, "\"'\n");
}

/* Only the socket, for every role (tests and applications use roles of
 * their own); a line for TCP would trust anyone the day listen_addresses
 * is set. */
static const char hba_conf[] =
    "# pgbank's private server: connections only through the unix socket in\n"
    "# the data directory, which only the server account (and root) can\n"
    "# enter.  No TCP line, whatever listen_addresses says.  pgbank rewrites\n"
    "# this file at every start.\n"
    "local all all trust\n";

static int start_cluster(const srv *s, const pgbank__runas *ra, const char *bindir,
                         char *err, size_t errlen)
{
    char log[PATH_MAX + 16], prog[PATH_MAX + 16], pgdata[PATH_MAX];
    char sock[PATH_MAX * 2 + 64], id[PATH_MAX + 128];
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    snprintf(prog, sizeof prog, "%s/pg_ctl", bindir);
    pgbank__strlcpy(pgdata, s->pgdata, sizeof pgdata);
    socket_conf(s, sock, sizeof sock);
    program_identity(bindir, id, sizeof id);
    /* Written by the server account before pg_ctl runs; pg_ctl's own
     * complaints land in server.log too: one place to look. */
    const pgbank__child_op ops[] = {
        {PGBANK__CHILD_REPLACE, "pgdata/pgbank.conf", sock, 0, 0},
        {PGBANK__CHILD_REPLACE, "pgdata/pg_hba.conf", hba_conf, 0, 0},
        {PGBANK__CHILD_REPLACE, ID_NAME, id, 0, 0},
    };
    char *argv[] = {prog, "-D", pgdata, "-l", log, "-w", "-t", "60", "-s", "start", NULL};
    int rc = run_in_dir(argv, s, ra, "server.log", PGBANK__OUT_APPEND, ops, 3, err, errlen);
    if (rc < 0)
        return rc;
    if (rc != 0 || !is_running(s)) {
        char tail[512];
        pgbank__log_tail(s, "server.log", tail, sizeof tail);
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "could not start PostgreSQL (pg_ctl exit %d); %s says: %s", rc, log,
                            tail);
    }
    return 0;
}

static void trim_newline(char *m)
{
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        m[--n] = '\0';
    for (char *p = m; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

static int create_database(const srv *s, char *err, size_t errlen)
{
    const char *const keys[] = {"host", "port", "user", "dbname",
                                "connect_timeout", "application_name", NULL};
    const char *const vals[] = {s->dir, SERVER_PORT, SERVER_USER, "postgres",
                                "10", "pgbank-server", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    int rc = 0;
    if (!c || PQstatus(c) != CONNECTION_OK) {
        char m[512];
        pgbank__strlcpy(m, c ? PQerrorMessage(c) : "out of memory", sizeof m);
        trim_newline(m);
        rc = pgbank__fail(PGBANK_ESERVER, err, errlen,
                          "the private server started but refuses connections: %s", m);
        PQfinish(c);
        return rc;
    }
    PGresult *r = PQexec(c, "SELECT 1 FROM pg_database WHERE datname = '" SERVER_DB "'");
    int missing = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0;
    int failed = PQresultStatus(r) != PGRES_TUPLES_OK;
    PQclear(r);
    if (missing) {
        r = PQexec(c, "CREATE DATABASE " SERVER_DB);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        /* 42P04: someone else created it meanwhile, which is fine. */
        failed = PQresultStatus(r) != PGRES_COMMAND_OK &&
                 !pgbank__sqlstate_is(state, PGBANK_SQLSTATE_DUPLICATE_DATABASE);
        PQclear(r);
    }
    if (failed) {
        char m[512];
        pgbank__strlcpy(m, PQerrorMessage(c), sizeof m);
        trim_newline(m);
        rc = pgbank__fail(PGBANK_ESERVER, err, errlen,
                          "could not create the database " SERVER_DB ": %s", m);
    }
    PQfinish(c);
    return rc;
}

static int stop_cluster(const srv *s, const pgbank__runas *ra, const char *bindir,
                        char *err, size_t errlen)
{
    char prog[PATH_MAX + 16], pgdata[PATH_MAX];
    snprintf(prog, sizeof prog, "%s/pg_ctl", bindir);
    pgbank__strlcpy(pgdata, s->pgdata, sizeof pgdata);
    char *argv[] = {prog, "-D", pgdata, "-m", "fast", "-w", "-t", "60", "-s", "stop", NULL};
    int rc = run_in_dir(argv, s, ra, "server.log", PGBANK__OUT_APPEND, NULL, 0, err, errlen);
    if (rc > 0) {
        char tail[512];
        pgbank__log_tail(s, "server.log", tail, sizeof tail);
        rc = pgbank__fail(PGBANK_ESERVER, err, errlen,
                          "could not stop PostgreSQL (pg_ctl exit %d); %s/server.log says: %s",
                          rc, s->dir, tail);
    }
    return rc;
}

/* Everything a start does past the reuse path, under the lock. */
static int start_locked(srv *s, const pgbank__runas *ra, int restart, const char *changed,
                        char *err, size_t errlen)
{
    char bindir[PATH_MAX];
    int rc = find_bindir(s, bindir, sizeof bindir, err, errlen);
    if (rc == 0 && ra->drop)
        rc = pgbank__grant_search(s, ra, err, errlen);
    if (rc == 0 && restart) {
        fprintf(stderr,
                "pgbank: %s changed under the private server in %s (PostgreSQL was "
                "updated); restarting the server once\n",
                changed, s->dir);
        rc = stop_cluster(s, ra, bindir, err, errlen);
    }
    if (rc == 0 && !is_initialised(s))
        rc = init_cluster(s, ra, bindir, err, errlen);
    if (rc == 0)
        rc = start_cluster(s, ra, bindir, err, errlen);
    if (rc == 0) {
        rc = create_database(s, err, errlen);
        /* Running means ready to the reuse path, which never checks for
         * the database: so do not leave a server without it. */
        if (rc != 0)
            (void)stop_cluster(s, ra, bindir, NULL, 0);
    }
    return rc;
}

PGBANK__API int pgbank_server_start(const char *data_dir, char *err, size_t errlen)
{
    srv s;
    pgbank__runas ra;
    char changed[PATH_MAX] = "";
    int rc = pgbank__srv_init(&s, data_dir, err, errlen);
    if (rc == 0)
        rc = pgbank__server_account(&ra, err, errlen);
    if (rc == 0)
        rc = pgbank__datadir_open(&s, &ra, 1, err, errlen);
    if (rc != 0)
        return rc;
    int lock = pgbank__datadir_lock(&s, &ra, err, errlen);
    if (lock < 0) {
        pgbank__srv_close(&s);
        return lock;
    }
    int restart = 0;
    if (is_initialised(&s) && is_running(&s)) {
        restart = program_changed(&s, changed, sizeof changed);
        if (!restart) {
            close(lock); /* the reuse path: no fork, no connection */
            pgbank__srv_close(&s);
            return 0;
        }
    }
    rc = start_locked(&s, &ra, restart, changed, err, errlen);
    if (rc != 0 && restart && err && errlen) {
        char why[1024];
        pgbank__strlcpy(why, err, sizeof why);
        pgbank__fail(rc, err, errlen,
                     "PostgreSQL changed under the private server in %s and restarting it "
                     "failed: %s; run 'pgbank server stop --data-dir %s' and start it again",
                     s.dir, why, s.dir);
    }
    close(lock);
    pgbank__srv_close(&s);
    return rc;
}

/* D for the commands that only act on an existing server (stop, status,
 * kill): PGBANK_ENOTFOUND when there is none. */
static int open_existing(srv *s, pgbank__runas *ra, const char *data_dir, char *err,
                         size_t errlen)
{
    int rc = pgbank__srv_init(s, data_dir, err, errlen);
    if (rc == 0)
        rc = pgbank__server_account(ra, err, errlen);
    if (rc == 0)
        rc = pgbank__datadir_open(s, ra, 0, err, errlen);
    if (rc == 0 && !is_initialised(s))
        rc = PGBANK_ENOTFOUND;
    if (rc != 0)
        pgbank__srv_close(s);
    return rc;
}

PGBANK__API int pgbank_server_stop(const char *data_dir, char *err, size_t errlen)
{
    srv s;
    pgbank__runas ra;
    char bindir[PATH_MAX];
    int rc = open_existing(&s, &ra, data_dir, err, errlen);
    if (rc != 0)
        return rc == PGBANK_ENOTFOUND ? 0 : rc;
    if (!is_running(&s)) {
        pgbank__srv_close(&s);
        return 0;
    }
    int lock = pgbank__datadir_lock(&s, &ra, err, errlen);
    if (lock < 0) {
        pgbank__srv_close(&s);
        return lock;
    }
    if (is_running(&s)) {
        rc = find_bindir(&s, bindir, sizeof bindir, err, errlen);
        if (rc == 0)
            rc = stop_cluster(&s, &ra, bindir, err, errlen);
    }
    close(lock);
    pgbank__srv_close(&s);
    return rc;
}

PGBANK__API int pgbank_server_status(const char *data_dir)
{
    srv s;
    pgbank__runas ra;
    int rc = open_existing(&s, &ra, data_dir, NULL, 0);
    if (rc != 0)
        return rc;
    rc = is_running(&s) ? 1 : 0;
    pgbank__srv_close(&s);
    return rc;
}

PGBANK__API int pgbank_server_kill(const char *data_dir, int sig, char *err, size_t errlen)
{
    srv s;
    pgbank__runas ra;
    if (sig < 0 || sig > 64)
        return pgbank__fail(PGBANK_EINVAL, err, errlen, "no such signal: %d", sig);
    int rc = open_existing(&s, &ra, data_dir, err, errlen);
    if (rc == PGBANK_ENOTFOUND)
        return pgbank__fail(rc, err, errlen, "no private server in %s", s.dir);
    if (rc != 0)
        return rc;
    long pid = postmaster_pid(&s);
    if (pid <= 0) {
        rc = pgbank__fail(PGBANK_ENOTFOUND, err, errlen,
                          "the private server in %s is not running (no postmaster.pid)", s.dir);
    } else if (!ra.drop) {
        if (kill((pid_t)pid, sig) != 0)
            rc = pgbank__fail(errno == ESRCH ? PGBANK_ENOTFOUND : PGBANK_ESERVER, err, errlen,
                              "could not signal the postmaster (pid %ld) of %s: %s", pid, s.dir,
                              strerror(errno));
    } else {
        /* With the server account's rights only: whatever pid a planted
         * postmaster.pid names, root signals nothing that account could
         * not signal itself. */
        const pgbank__child_op op = {PGBANK__CHILD_SIGNAL, NULL, NULL, (pid_t)pid, sig};
        rc = run_in_dir(NULL, &s, &ra, NULL, 0, &op, 1, err, errlen);
    }
    pgbank__srv_close(&s);
    return rc;
}

PGBANK__API int pgbank_server_conninfo(const char *data_dir, char *buf, size_t len)
{
    srv s;
    if (!buf || len == 0)
        return PGBANK_EINVAL;
    buf[0] = '\0';
    if (pgbank__srv_init(&s, data_dir, NULL, 0) != 0)
        return PGBANK_EINVAL;
    /* libpq's quoting: '...' with \' and \\ inside, when needed. */
    char host[PATH_MAX * 2 + 3];
    size_t o = 0;
    int quote = strpbrk(s.dir, " \t\n\r\f\v'\\") != NULL;
    if (quote)
        host[o++] = '\'';
    for (const char *p = s.dir; *p; p++) {
        if (*p == '\'' || *p == '\\')
            host[o++] = '\\';
        host[o++] = *p;
    }
    if (quote)
        host[o++] = '\'';
    host[o] = '\0';
    int n = snprintf(buf, len,
                     "host=%s port=" SERVER_PORT " user=" SERVER_USER " dbname=" SERVER_DB,
                     host);
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return PGBANK_EINVAL;
    }
    return 0;
}

PGBANK__API int pgbank_server_url(const char *data_dir, char *buf, size_t len)
{
    srv s;
    if (!buf || len == 0 || pgbank__srv_init(&s, data_dir, NULL, 0) != 0)
        return PGBANK_EINVAL;
    static const char hex[] = "0123456789ABCDEF";
    char host[PATH_MAX * 3];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s.dir; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
            host[o++] = (char)*p;
        } else {
            host[o++] = '%';
            host[o++] = hex[*p >> 4];
            host[o++] = hex[*p & 15];
        }
    }
    host[o] = '\0';
    int n = snprintf(buf, len, "postgresql://" SERVER_USER "@%s:" SERVER_PORT "/" SERVER_DB,
                     host);
    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return PGBANK_EINVAL;
    }
    return 0;
}

PGBANK__API int pgbank_server_default_dir(char *buf, size_t len)
{
    char raw[PATH_MAX * 2];
    const char *d = getenv("PGBANK_DATA_DIR");
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    struct passwd pwbuf, *pw = NULL;
    char pwstr[4096];
    int n;
    if (d && *d) {
        n = snprintf(raw, sizeof raw, "%s", d);
    } else if (xdg && *xdg) {
        n = snprintf(raw, sizeof raw, "%s/pgbank", xdg);
    } else {
        if ((!home || !*home) &&
            getpwuid_r(getuid(), &pwbuf, pwstr, sizeof pwstr, &pw) == 0 && pw)
            home = pw->pw_dir;
        if (!home || !*home)
            return PGBANK_EINVAL;
        n = snprintf(raw, sizeof raw, "%s/.local/state/pgbank", home);
    }
    if (n < 0 || (size_t)n >= sizeof raw || !buf || len == 0 ||
        pgbank__absolute_path(raw, buf, len) != 0)
        return PGBANK_EINVAL;
    return 0;
}
