/*
 * test_server.c - the private server, end to end, in a throwaway directory
 * of its own (no fixture): initdb from nothing, connect by conninfo and by
 * URL, fast reuse, stop, concurrent starts, a stale pid file, the default
 * directory, and paths that cannot work.  The directory's name holds a
 * space and a quote on purpose.  Everything is stopped and removed at exit,
 * also after a failure.
 */
#include "rmtree.h"
#include "testlib.h"

#include <errno.h>
#include <signal.h>
#include <sys/xattr.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char base[128]; /* mkdtemp'd */
static char dir[192];  /* base/srv: the data directory under test */
static char fresh[192]; /* base/fresh: for starts from nothing at once */

static void cleanup(void)
{
    char err[512];
    if (!base[0])
        return;
    if (pgbank_server_status(dir) == 1 && pgbank_server_stop(dir, err, sizeof err) != 0)
        fprintf(stderr, "cleanup: %s\n", err);
    if (pgbank_server_status(fresh) == 1 && pgbank_server_stop(fresh, err, sizeof err) != 0)
        fprintf(stderr, "cleanup: %s\n", err);
    if (rmtree(base) != 0)
        fprintf(stderr, "cleanup: could not remove %s: %s\n", base, strerror(errno));
    base[0] = '\0';
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static long postmaster_pid(const char *d)
{
    char p[256], buf[32] = "";
    snprintf(p, sizeof p, "%s/pgdata/postmaster.pid", d);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    fclose(f);
    return strtol(buf, NULL, 10);
}

/* Runs a one-value query; returns it in out ("" on failure). */
static int query1(const char *conninfo, const char *sql, char *out, size_t len)
{
    out[0] = '\0';
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "  connect(%s): %s", conninfo, PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok)
        snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "  %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

static void paths_that_cannot_work_are_refused(void)
{
    char longdir[160], err[256] = "", buf[512];
    struct stat st;
    int n = snprintf(longdir, sizeof longdir, "/tmp/pgbank-");
    memset(longdir + n, 'x', 100 - (size_t)n);
    longdir[100] = '\0';
    CHECK_I64(pgbank_server_start(longdir, err, sizeof err), PGBANK_EINVAL);
    CHECK(strstr(err, "data directory path too long for a unix socket (100 bytes, max 93)") != NULL);
    CHECK(strstr(err, "--data-dir") != NULL);
    CHECK(stat(longdir, &st) != 0); /* nothing was created */
    CHECK_I64(pgbank_server_status(longdir), PGBANK_EINVAL);
    CHECK_I64(pgbank_server_conninfo(longdir, buf, sizeof buf), PGBANK_EINVAL);
    CHECK_I64(pgbank_server_url(longdir, buf, sizeof buf), PGBANK_EINVAL);
    /* 93 bytes is the longest that fits. */
    longdir[93] = '\0';
    CHECK_I64(pgbank_server_conninfo(longdir, buf, sizeof buf), 0);

    err[0] = '\0';
    CHECK_I64(pgbank_server_start("/tmp/a\"b", err, sizeof err), PGBANK_EINVAL);
    CHECK(strstr(err, "character") != NULL);
    CHECK_I64(pgbank_server_start("/tmp/a,b", err, sizeof err), PGBANK_EINVAL);
    CHECK_I64(pgbank_server_start(NULL, err, sizeof err), PGBANK_EINVAL);
    CHECK_I64(pgbank_server_start("", err, sizeof err), PGBANK_EINVAL);

    char missing[256];
    snprintf(missing, sizeof missing, "%s/never-made", base);
    CHECK_I64(pgbank_server_status(missing), PGBANK_ENOTFOUND);
    CHECK_I64(pgbank_server_stop(missing, err, sizeof err), 0);
    CHECK(stat(missing, &st) != 0);
}

static void the_default_directory_follows_the_environment(void)
{
    char buf[PATH_MAX], want[PATH_MAX + 64], cwd[PATH_MAX];
    char *saved[3];
    const char *names[3] = {"PGBANK_DATA_DIR", "XDG_STATE_HOME", "HOME"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(names[i]);
        saved[i] = v ? strdup(v) : NULL;
    }
    CHECK(getcwd(cwd, sizeof cwd) != NULL);

    setenv("PGBANK_DATA_DIR", "/srv/pgbank//data/", 1);
    setenv("XDG_STATE_HOME", "/xdg", 1);
    CHECK_I64(pgbank_server_default_dir(buf, sizeof buf), 0);
    CHECK_STR(buf, "/srv/pgbank/data");
    setenv("PGBANK_DATA_DIR", "rel/./d", 1);
    CHECK_I64(pgbank_server_default_dir(buf, sizeof buf), 0);
    snprintf(want, sizeof want, "%s/rel/d", strcmp(cwd, "/") ? cwd : "");
    CHECK_STR(buf, want);
    unsetenv("PGBANK_DATA_DIR");
    CHECK_I64(pgbank_server_default_dir(buf, sizeof buf), 0);
    CHECK_STR(buf, "/xdg/pgbank");
    setenv("XDG_STATE_HOME", "", 1);
    setenv("HOME", "/home/alice", 1);
    CHECK_I64(pgbank_server_default_dir(buf, sizeof buf), 0);
    CHECK_STR(buf, "/home/alice/.local/state/pgbank");
    unsetenv("HOME");
    struct passwd *pw = getpwuid(getuid());
    CHECK_I64(pgbank_server_default_dir(buf, sizeof buf), 0);
    if (pw) {
        snprintf(want, sizeof want, "%s/.local/state/pgbank",
                 strcmp(pw->pw_dir, "/") ? pw->pw_dir : "");
        CHECK_STR(buf, want);
    }
    setenv("HOME", "/home/alice", 1);
    CHECK_I64(pgbank_server_default_dir(buf, 10), PGBANK_EINVAL);

    for (int i = 0; i < 3; i++) {
        if (saved[i])
            setenv(names[i], saved[i], 1);
        else
            unsetenv(names[i]);
        free(saved[i]);
    }
}

static void a_server_starts_from_nothing(void)
{
    char err[1024] = "", p[256];
    struct stat st;
    struct timespec t0;
    CHECK_I64(pgbank_server_status(dir), PGBANK_ENOTFOUND);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = pgbank_server_start(dir, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "  start: %s\n", err);
    CHECK_I64(rc, 0);
    printf("  initdb and start took %.0f ms\n", ms_since(&t0));
    CHECK_I64(pgbank_server_status(dir), 1);

    CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
    snprintf(p, sizeof p, "%s/pgdata/PG_VERSION", dir);
    CHECK(stat(p, &st) == 0);
    snprintf(p, sizeof p, "%s/.s.PGSQL.5432", dir);
    CHECK(stat(p, &st) == 0 && S_ISSOCK(st.st_mode));
    snprintf(p, sizeof p, "%s/server.log", dir);
    CHECK(stat(p, &st) == 0);
    snprintf(p, sizeof p, "%s/pgbank.lock", dir);
    CHECK(stat(p, &st) == 0);

    if (geteuid() == 0) {
        /* Run by the unprivileged account, which was let through the 0700
         * directory above the data directory by an ACL entry of its own:
         * others gain nothing (no o+x). */
        struct passwd *pw = getpwnam(getenv("PGBANK_SERVER_USER") ? getenv("PGBANK_SERVER_USER")
                                                                  : "postgres");
        CHECK(pw != NULL);
        CHECK(stat(dir, &st) == 0 && pw && st.st_uid == pw->pw_uid);
        snprintf(p, sizeof p, "%s/pgdata", dir);
        CHECK(stat(p, &st) == 0 && pw && st.st_uid == pw->pw_uid);
        CHECK(stat(base, &st) == 0 && (st.st_mode & 07) == 0);
        unsigned char acl[256];
        ssize_t n = getxattr(base, "system.posix_acl_access", acl, sizeof acl);
        int entry = 0;
        for (ssize_t o = 4; pw && o + 8 <= n; o += 8)
            entry |= acl[o] == 2 && acl[o + 2] == 1 &&
                     (uid_t)(acl[o + 4] | acl[o + 5] << 8 | acl[o + 6] << 16 |
                             (uint32_t)acl[o + 7] << 24) == pw->pw_uid;
        CHECK(entry); /* u:postgres:--x */
    }
}

static void clients_connect_by_conninfo_and_by_url(void)
{
    char conninfo[512], url[512], v[256];
    CHECK_I64(pgbank_server_conninfo(dir, conninfo, sizeof conninfo), 0);
    CHECK_I64(pgbank_server_url(dir, url, sizeof url), 0);
    printf("  conninfo: %s\n  url: %s\n", conninfo, url);
    CHECK(strncmp(url, "postgresql://pgbank@%2Ftmp%2Fpgbank%20test%20it%27s%20", 54) == 0);
    CHECK(strstr(conninfo, "host='/tmp/pgbank test it\\'s ") == conninfo);

    CHECK_I64(query1(conninfo, "SELECT 1", v, sizeof v), 0);
    CHECK_STR(v, "1");
    CHECK_I64(query1(url, "SELECT current_database() || ' ' || current_user", v, sizeof v), 0);
    CHECK_STR(v, "pgbank pgbank");
    /* The URL also goes through pgbank's own normaliser unchanged. */
    char err[256];
    char *n = pgbank_conninfo_normalize(url, err, sizeof err);
    CHECK_STR(n, url);
    free(n);

    /* The settings the engine and durability depend on. */
    CHECK_I64(query1(conninfo, "SHOW max_connections", v, sizeof v), 0);
    CHECK_STR(v, "300");
    CHECK_I64(query1(conninfo, "SHOW listen_addresses", v, sizeof v), 0);
    CHECK_STR(v, "");
    CHECK_I64(query1(conninfo, "SHOW fsync", v, sizeof v), 0);
    CHECK_STR(v, "on");
    CHECK_I64(query1(conninfo, "SHOW server_encoding", v, sizeof v), 0);
    CHECK_STR(v, "UTF8");
}

static void a_second_start_reuses_it_at_once(void)
{
    char err[512] = "";
    long pid = postmaster_pid(dir);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_I64(pgbank_server_start(dir, err, sizeof err), 0);
    double ms = ms_since(&t0);
    printf("  reuse took %.2f ms\n", ms);
    CHECK(ms < 100);
    CHECK(pid > 0 && postmaster_pid(dir) == pid);
}

static void it_stops_and_says_so(void)
{
    char err[512] = "";
    int rc = pgbank_server_stop(dir, err, sizeof err);
    if (rc)
        fprintf(stderr, "  stop: %s\n", err);
    CHECK_I64(rc, 0);
    CHECK_I64(pgbank_server_status(dir), 0);
    CHECK_I64(pgbank_server_stop(dir, err, sizeof err), 0); /* already stopped */
    CHECK_I64(pgbank_server_status(dir), 0);
}

/* Forks n processes that all start dir at the same moment; each must
 * succeed and they must end up sharing one server. */
static void start_at_once(const char *d, int n)
{
    int go[2];
    pid_t kids[8];
    CHECK(pipe(go) == 0);
    for (int i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            char err[1024] = "", c;
            close(go[1]);
            if (read(go[0], &c, 1) < 0) /* wait for the starting gun */
                _exit(3);
            int rc = pgbank_server_start(d, err, sizeof err);
            if (rc != 0)
                fprintf(stderr, "  child %d: %s\n", i, err);
            _exit(rc == 0 ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]); /* EOF: everyone goes */
    for (int i = 0; i < n; i++) {
        int st = -1;
        CHECK(kids[i] > 0 && waitpid(kids[i], &st, 0) == kids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    char conninfo[512], v[64];
    CHECK_I64(pgbank_server_status(d), 1);
    CHECK_I64(pgbank_server_conninfo(d, conninfo, sizeof conninfo), 0);
    CHECK_I64(query1(conninfo, "SELECT 40 + 2", v, sizeof v), 0);
    CHECK_STR(v, "42");
}

static void two_processes_starting_it_at_once_both_succeed(void)
{
    start_at_once(dir, 2);
}

static void three_processes_starting_from_nothing_make_one_server(void)
{
    char err[512] = "";
    start_at_once(fresh, 3);
    CHECK_I64(pgbank_server_stop(fresh, err, sizeof err), 0);
    CHECK_I64(pgbank_server_status(fresh), 0);
}

static void a_stale_pid_file_does_not_block_a_start(void)
{
    char err[1024] = "", p[320], pgdata[256];
    struct stat st;
    CHECK_I64(pgbank_server_stop(dir, err, sizeof err), 0);
    /* The pid of a process that is surely gone. */
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    snprintf(pgdata, sizeof pgdata, "%s/pgdata", dir);
    snprintf(p, sizeof p, "%s/postmaster.pid", pgdata);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "%ld\n%s\n0\n5432\n%s\n\n0 0\nready   \n", (long)dead, pgdata, dir);
        fclose(f);
    }
    if (stat(pgdata, &st) == 0 && chown(p, st.st_uid, st.st_gid) != 0)
        perror("chown");
    CHECK_I64(pgbank_server_status(dir), 0);
    int rc = pgbank_server_start(dir, err, sizeof err);
    if (rc)
        fprintf(stderr, "  start: %s\n", err);
    CHECK_I64(rc, 0);
    CHECK_I64(pgbank_server_status(dir), 1);
    CHECK(postmaster_pid(dir) != (long)dead);
    CHECK_I64(pgbank_server_stop(dir, err, sizeof err), 0);
}

/* Waits up to 30 s for the postmaster to be gone: not running, and its
 * pid file removed (it removes the socket first, the pid file last). */
static int wait_gone(const char *d)
{
    for (int i = 0; i < 3000; i++) {
        if (pgbank_server_status(d) != 1 && postmaster_pid(d) < 0)
            return 1;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void pgbank_server_kill_crashes_it_and_a_start_brings_it_back(void)
{
    char err[1024] = "";
    CHECK_I64(pgbank_server_start(dir, err, sizeof err), 0);
    long before = postmaster_pid(dir);
    CHECK_I64(pgbank_server_kill(dir, 0, err, sizeof err), 0); /* only asks */
    CHECK_I64(pgbank_server_status(dir), 1);
    CHECK_I64(pgbank_server_kill(dir, SIGQUIT, err, sizeof err), 0);
    CHECK(wait_gone(dir));
    CHECK_I64(pgbank_server_start(dir, err, sizeof err), 0);
    CHECK_I64(pgbank_server_status(dir), 1);
    CHECK(postmaster_pid(dir) != before);
    CHECK_I64(pgbank_server_stop(dir, err, sizeof err), 0);
    CHECK_I64(pgbank_server_kill(dir, SIGQUIT, err, sizeof err), PGBANK_ENOTFOUND);

    CHECK_I64(pgbank_server_kill(dir, -1, err, sizeof err), PGBANK_EINVAL);
    CHECK_I64(pgbank_server_kill(dir, 65, err, sizeof err), PGBANK_EINVAL);
    char missing[256];
    snprintf(missing, sizeof missing, "%s/never-made", base);
    err[0] = '\0';
    CHECK_I64(pgbank_server_kill(missing, SIGQUIT, err, sizeof err), PGBANK_ENOTFOUND);
    CHECK(strstr(err, "no private server") != NULL);
}

/* As root the kill runs with the server account's rights: a postmaster.pid
 * that account planted, naming one of root's processes, signals nothing. */
static void a_planted_postmaster_pid_cannot_make_root_kill_its_own_process(void)
{
    char err[1024] = "", p[320];
    if (geteuid() != 0) {
        printf("  not run: without root there is no one else's process to reach\n");
        return;
    }
    CHECK_I64(pgbank_server_status(dir), 0);
    pid_t victim = fork();
    if (victim == 0) {
        pause();
        _exit(0);
    }
    char pgdata[256];
    struct stat st;
    snprintf(pgdata, sizeof pgdata, "%s/pgdata", dir);
    snprintf(p, sizeof p, "%s/postmaster.pid", pgdata);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "%ld\n", (long)victim);
        fclose(f);
    }
    /* As the server account would have written it. */
    CHECK(stat(pgdata, &st) == 0 && chown(p, st.st_uid, st.st_gid) == 0);
    CHECK(pgbank_server_kill(dir, SIGKILL, err, sizeof err) < 0);
    CHECK(strstr(err, "Operation not permitted") != NULL);
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK(waitpid(victim, NULL, WNOHANG) == 0); /* alive */
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    snprintf(p, sizeof p, "%s/pgdata/postmaster.pid", dir);
    unlink(p);
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/pgbank test it's XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 2;
    }
    atexit(cleanup);
    snprintf(dir, sizeof dir, "%s/srv", base);
    snprintf(fresh, sizeof fresh, "%s/fresh", base);

    RUN(paths_that_cannot_work_are_refused);
    RUN(the_default_directory_follows_the_environment);
    RUN(a_server_starts_from_nothing);
    RUN(clients_connect_by_conninfo_and_by_url);
    RUN(a_second_start_reuses_it_at_once);
    RUN(it_stops_and_says_so);
    RUN(two_processes_starting_it_at_once_both_succeed);
    RUN(three_processes_starting_from_nothing_make_one_server);
    RUN(a_stale_pid_file_does_not_block_a_start);
    RUN(pgbank_server_kill_crashes_it_and_a_start_brings_it_back);
    RUN(a_planted_postmaster_pid_cannot_make_root_kill_its_own_process);
    cleanup();
    TEST_EXIT();
}
