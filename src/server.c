/*
 * server.c - the private PostgreSQL server (the embedded default): one
 * cluster per data directory D, reachable only through the unix socket
 * inside D (mode 0700, no TCP), initialised on first use, started on demand
 * and reused by every pgbank process that finds it running.
 *
 * Layout of D:  pgdata/ (the cluster)  .s.PGSQL.5432 (the socket)
 *               pgbank.lock (flock: one starter at a time)
 *               server.log (postgres and pg_ctl)  initdb.log
 *
 * trust authentication is safe only because the socket sits in a directory
 * nobody else can enter; that is why D is forced to 0700.
 *
 * initdb refuses to run as root, so as root the server programs run as an
 * unprivileged account (postgres, or $PGBANK_SERVER_USER).  Children are
 * started with fork + execve on argument vectors prepared before the fork
 * (no shell, and nothing unsafe between fork and exec).
 */
/* nftw and getgrouplist are XSI / BSD. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include "internal.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


#define SERVER_PORT "5432"
#define SOCKET_NAME "/.s.PGSQL.5432"
#define SERVER_USER "pgbank"
#define SERVER_DB "pgbank"
/* Long enough for initdb plus pg_ctl's own 60 s start timeout. */
#define LOCK_WAIT_S 180

typedef struct srv {
    char dir[PATH_MAX];    /* D, absolute, no trailing '/' */
    char pgdata[PATH_MAX]; /* D/pgdata */
} srv;


static int path_join(char *out, size_t len, const char *a, const char *b)
{
    int n = snprintf(out, len, "%s%s", a, b);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Makes `in` absolute and tidy ("//" and "/./" folded, no trailing '/'). */
static int absolute_path(const char *in, char *out, size_t len)
{
    char tmp[PATH_MAX * 2];
    if (!in || !*in)
        return -1;
    if (in[0] == '/') {
        if (strlen(in) >= sizeof tmp)
            return -1;
        strcpy(tmp, in);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) ||
            path_join(tmp, sizeof tmp, cwd, "/") != 0 ||
            strlen(tmp) + strlen(in) >= sizeof tmp)
            return -1;
        strcat(tmp, in);
    }
    size_t o = 0;
    for (const char *p = tmp; *p;) {
        if (*p == '/') {
            while (*p == '/')
                p++;
            if (p[0] == '.' && (p[1] == '/' || p[1] == '\0')) {
                p++;
                continue;
            }
            if (o + 1 >= len)
                return -1;
            out[o++] = '/';
            continue;
        }
        if (o + 1 >= len)
            return -1;
        out[o++] = *p++;
    }
    while (o > 1 && out[o - 1] == '/')
        o--;
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    return 0;
}

/* Resolves and checks a data directory; every entry point starts here. */
static int srv_init(srv *s, const char *data_dir, char *err, size_t errlen)
{
    if (!data_dir || !*data_dir)
        return pgbank__fail(PGBANK_EINVAL, err, errlen, "no data directory given");
    if (absolute_path(data_dir, s->dir, sizeof s->dir) != 0)
        return pgbank__fail(PGBANK_EINVAL, err, errlen,
                            "cannot make the data directory path absolute");
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1 - strlen(SOCKET_NAME);
    size_t n = strlen(s->dir);
    if (n > max)
        return pgbank__fail(PGBANK_EINVAL, err, errlen,
                            "data directory path too long for a unix socket "
                            "(%zu bytes, max %zu); choose a shorter --data-dir",
                            n, max);
    /* pg_ctl puts the path inside "..." in a shell command, and libpq reads
     * a ',' in host as a list of hosts. */
    for (const char *p = s->dir; *p; p++)
        if (strchr("\"$`\\,", *p) || (unsigned char)*p < 0x20)
            return pgbank__fail(PGBANK_EINVAL, err, errlen,
                                "the data directory path contains a character "
                                "PostgreSQL tools cannot take (one of \" $ ` \\ , "
                                "or a control character); choose another --data-dir");
    if (path_join(s->pgdata, sizeof s->pgdata, s->dir, "/pgdata") != 0)
        return pgbank__fail(PGBANK_EINVAL, err, errlen, "data directory path too long");
    return 0;
}

static int is_initialised(const srv *s)
{
    char p[PATH_MAX + 16];
    struct stat st;
    snprintf(p, sizeof p, "%s/PG_VERSION", s->pgdata);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Running: postmaster.pid names a live process and the socket exists.
 * Cheap on purpose (no fork, no connection): this is the reuse path. */
static int is_running(const srv *s)
{
    char p[PATH_MAX + 32], buf[64];
    struct stat st;
    snprintf(p, sizeof p, "%s/postmaster.pid", s->pgdata);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long pid = strtol(buf, NULL, 10);
    if (pid <= 0 || pid > INT_MAX)
        return 0;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
        return 0;
    snprintf(p, sizeof p, "%s%s", s->dir, SOCKET_NAME);
    return stat(p, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* The last few lines of a log, on one line ("a | b | c"), for err. */
static void log_tail(const char *path, char *out, size_t outlen)
{
    char buf[2048];
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        pgbank__strlcpy(out, "(no log)", outlen);
        return;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    if (n <= 0) {
        pgbank__strlcpy(out, "(empty log)", outlen);
        return;
    }
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\t' || buf[i] == '\r')
            buf[i] = ' ';
    const char *lines[3];
    int found = 0;
    char *end = buf + n;
    while (found < 3 && end > buf) {
        while (end > buf && (end[-1] == '\n' || end[-1] == ' '))
            *--end = '\0';
        char *start = end;
        while (start > buf && start[-1] != '\n')
            start--;
        if (start == buf && from > 0)
            break; /* a partial first line */
        if (*start)
            lines[found++] = start;
        end = start;
    }
    size_t o = 0;
    for (int i = found - 1; i >= 0 && o + 1 < outlen; i--) {
        int w = snprintf(out + o, outlen - o, "%s%s", o ? " | " : "", lines[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (!found)
        pgbank__strlcpy(out, "(empty log)", outlen);
}

/* --- Running the server programs --------------------------------------- */

/* Runs a server program as `ra` in D, its output into outfd (or /dev/null
 * when -1).  Returns its exit status or a negative code. */
static int run_program(char *const argv[], const pgbank__runas *ra, const char *cwd,
                       int outfd, char *err, size_t errlen)
{
    pgbank__proc_opts o;
    pgbank__proc_opts_init(&o);
    o.runas = ra;
    o.cwd = cwd;
    o.out_fd = outfd;
    o.err_fd = -2;
    o.umask_077 = 1;
    return pgbank__proc_run(argv, &o, err, errlen);
}

/* The directory of initdb, pg_ctl and postgres.  A cluster only starts
 * with its own major version, so an existing one's version comes first. */
static int find_bindir(const srv *s, char *out, size_t len, char *err, size_t errlen)
{
    static const char *const need[] = {"initdb", "pg_ctl", "postgres", NULL};
    char p[PATH_MAX + 64], ver[32] = "";
    snprintf(p, sizeof p, "%s/PG_VERSION", s->pgdata);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, ver, sizeof ver - 1);
        close(fd);
        ver[n > 0 ? n : 0] = '\0';
        ver[strspn(ver, "0123456789.")] = '\0';
    }
    if (pgbank__pg_bindir(ver, need, out, len))
        return 0;
    return pgbank__fail(PGBANK_ESERVER, err, errlen,
                        "PostgreSQL server programs (initdb, pg_ctl, postgres) "
                        "not found: tried pg_config --bindir, $PATH, "
                        "/usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, "
                        "/usr/local/pgsql/bin; install them (apt-get install "
                        "postgresql) or put their directory on PATH");
}

/* --- Accounts and permissions (root only) ------------------------------- */

static int runas_from_pw(pgbank__runas *ra, const struct passwd *pw)
{
    ra->drop = 1;
    ra->uid = pw->pw_uid;
    ra->gid = pw->pw_gid;
    pgbank__strlcpy(ra->name, pw->pw_name, sizeof ra->name);
    ra->ngroups = (int)(sizeof ra->groups / sizeof ra->groups[0]);
    if (getgrouplist(pw->pw_name, pw->pw_gid, ra->groups, &ra->ngroups) < 0) {
        ra->groups[0] = pw->pw_gid; /* more than 64 groups: keep the main one */
        ra->ngroups = 1;
    }
    return 0;
}

/* Who runs the server.  As root: the owner of an existing cluster (it only
 * starts as its owner), else $PGBANK_SERVER_USER or postgres. */
static int server_account(const srv *s, pgbank__runas *ra, char *err, size_t errlen)
{
    memset(ra, 0, sizeof *ra);
    if (geteuid() != 0) {
        ra->uid = geteuid();
        ra->gid = getegid();
        return 0;
    }
    struct passwd pwbuf, *pw = NULL;
    char buf[4096];
    struct stat st;
    if (stat(s->pgdata, &st) == 0 && st.st_uid != 0) {
        if (getpwuid_r(st.st_uid, &pwbuf, buf, sizeof buf, &pw) == 0 && pw)
            return runas_from_pw(ra, pw);
        ra->drop = 1; /* an account without a passwd entry */
        ra->uid = st.st_uid;
        ra->gid = st.st_gid;
        snprintf(ra->name, sizeof ra->name, "uid %u", (unsigned)st.st_uid);
        ra->groups[0] = st.st_gid;
        ra->ngroups = 1;
        return 0;
    }
    const char *name = getenv("PGBANK_SERVER_USER");
    if (!name || !*name)
        name = "postgres";
    if (getpwnam_r(name, &pwbuf, buf, sizeof buf, &pw) != 0 || !pw)
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "running as root: the private server needs an "
                            "unprivileged account to run PostgreSQL, and there is "
                            "no account '%s'; create one (useradd -r postgres) or "
                            "set PGBANK_SERVER_USER, or run pgbank as a normal user",
                            name);
    if (pw->pw_uid == 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "running as root: PGBANK_SERVER_USER names '%s', a "
                            "root account; PostgreSQL refuses to run as root",
                            name);
    return runas_from_pw(ra, pw);
}

static int may_search(const struct stat *st, const pgbank__runas *ra)
{
    if (st->st_uid == ra->uid)
        return (st->st_mode & S_IXUSR) != 0;
    int in_group = st->st_gid == ra->gid;
    for (int i = 0; i < ra->ngroups && !in_group; i++)
        in_group = st->st_gid == ra->groups[i];
    if (in_group)
        return (st->st_mode & S_IXGRP) != 0;
    return (st->st_mode & S_IXOTH) != 0;
}

/* The server account must be able to walk down to D.  Where an ancestor
 * stops it (/root is 0700), add only o+x: enough to pass through, nothing
 * to list or to write.  Said once on stderr, since it changes the system. */
static int grant_search(const srv *s, const pgbank__runas *ra, char *err, size_t errlen)
{
    char changed[1024] = "";
    size_t n = strlen(s->dir);
    /* Each ancestor, from "/" down to D's parent; D itself is chown'd. */
    for (size_t i = 0; i < n; i++) {
        if (s->dir[i] != '/')
            continue;
        char anc[PATH_MAX];
        size_t alen = i == 0 ? 1 : i;
        memcpy(anc, s->dir, alen);
        anc[alen] = '\0';
        struct stat st;
        if (stat(anc, &st) != 0)
            return pgbank__fail(PGBANK_ESERVER, err, errlen, "cannot stat %s: %s",
                                anc, strerror(errno));
        if (may_search(&st, ra))
            continue;
        /* o+x helps only when the account is neither owner nor group. */
        if (chmod(anc, (st.st_mode & 07777) | S_IXOTH) != 0 ||
            stat(anc, &st) != 0 || !may_search(&st, ra))
            return pgbank__fail(PGBANK_ESERVER, err, errlen,
                                "the server account '%s' cannot reach %s: no "
                                "search permission on %s",
                                ra->name, s->dir, anc);
        size_t cl = strlen(changed);
        if (snprintf(changed + cl, sizeof changed - cl, "%s%s", cl ? ", " : "", anc) < 0)
            changed[cl] = '\0';
    }
    if (changed[0])
        fprintf(stderr,
                "pgbank: gave '%s' search access (o+x) to %s so the private "
                "server can reach %s\n",
                ra->name, changed, s->dir);
    return 0;
}

/* nftw passes no user pointer, hence these two. */
static uid_t chown_uid;
static gid_t chown_gid;

static int chown_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)flag;
    (void)f;
    if (st->st_uid != chown_uid || st->st_gid != chown_gid)
        if (lchown(p, chown_uid, chown_gid) != 0)
            return -1;
    return 0;
}

/* Everything in D belongs to the server account (root made some of it). */
static int chown_tree(const srv *s, const pgbank__runas *ra, char *err, size_t errlen)
{
    chown_uid = ra->uid;
    chown_gid = ra->gid;
    if (nftw(s->dir, chown_one, 16, FTW_PHYS) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "could not give %s to the server account '%s': %s",
                            s->dir, ra->name, strerror(errno));
    return 0;
}

static int remove_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return (flag == FTW_DP ? rmdir(p) : unlink(p)) != 0 && errno != ENOENT ? -1 : 0;
}

/* --- Start, stop ---------------------------------------------------------- */

/* mkdir -p D; D itself 0700 (the socket's only protection). */
static int make_dir(const srv *s, char *err, size_t errlen)
{
    char p[PATH_MAX];
    pgbank__strlcpy(p, s->dir, sizeof p);
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char save = *c;
        *c = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return pgbank__fail(PGBANK_ESERVER, err, errlen,
                                "could not create %s: %s", p, strerror(errno));
        *c = save;
        if (!save)
            break;
    }
    struct stat st;
    if (stat(s->dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "%s is not a directory", s->dir);
    if ((st.st_mode & 0777) != 0700 && chmod(s->dir, 0700) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "could not make %s private (chmod 0700): %s", s->dir,
                            strerror(errno));
    return 0;
}

/* Takes D/pgbank.lock (close the fd to release it).  Polls rather than
 * blocks, so a wedged holder turns into an error, not a hang. */
static int lock_dir(const srv *s, char *err, size_t errlen)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/pgbank.lock", s->dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not open %s: %s",
                            p, strerror(errno));
    int64_t deadline = pgbank__now_ns() + (int64_t)LOCK_WAIT_S * 1000000000;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || pgbank__now_ns() > deadline) {
            int e = errno;
            close(fd);
            return pgbank__fail(e == EWOULDBLOCK ? PGBANK_ETIMEDOUT : PGBANK_ESERVER,
                                err, errlen, "could not lock %s: %s", p,
                                e == EWOULDBLOCK ? "another pgbank process holds it"
                                                 : strerror(e));
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return fd;
}

static int open_log(const char *path, const pgbank__runas *ra, int trunc)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : O_APPEND),
                  0600);
    if (fd >= 0 && ra->drop && fchown(fd, ra->uid, ra->gid) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_file(const char *path, const char *text, int append, const pgbank__runas *ra)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
                  0600);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    if (ra->drop && fchown(fd, ra->uid, ra->gid) != 0)
        ok = 0;
    return close(fd) == 0 && ok ? 0 : -1;
}

/* initdb into D/pgdata.init, then rename: a killed initdb never leaves a
 * half-made D/pgdata that looks initialised. */
static int init_cluster(const srv *s, const pgbank__runas *ra, const char *bindir,
                        char *err, size_t errlen)
{
    char tmp[PATH_MAX + 16], log[PATH_MAX + 16], prog[PATH_MAX + 16],
        conf[PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s/pgdata.init", s->dir);
    snprintf(log, sizeof log, "%s/initdb.log", s->dir);
    snprintf(prog, sizeof prog, "%s/initdb", bindir);
    struct stat st;
    if (lstat(tmp, &st) == 0 && nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "could not remove a leftover %s: %s", tmp, strerror(errno));
    int logfd = open_log(log, ra, 1);
    if (logfd < 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not create %s: %s",
                            log, strerror(errno));
    char *argv[] = {prog, "-D", tmp, "-U", SERVER_USER, "--auth=trust",
                    "-E", "UTF8", "--no-locale", NULL};
    int rc = run_program(argv, ra, s->dir, logfd, err, errlen);
    close(logfd);
    if (rc < 0)
        return rc;
    if (rc != 0) {
        char tail[512];
        log_tail(log, tail, sizeof tail);
        nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "initdb failed (exit %d); %s says: %s", rc, log, tail);
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
    snprintf(conf, sizeof conf, "%s/postgresql.conf", tmp);
    if (write_file(conf, settings, 1, ra) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not write %s: %s",
                            conf, strerror(errno));
    if (rename(tmp, s->pgdata) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not rename %s: %s",
                            tmp, strerror(errno));
    return 0;
}

/* unix_socket_directories = '"D"': double quotes for the list syntax
 * (spaces), then the config file's single-quoted string rules. */
static int write_socket_conf(const srv *s, const pgbank__runas *ra, char *err, size_t errlen)
{
    char text[PATH_MAX * 2 + 64], path[PATH_MAX + 16];
    size_t o = (size_t)snprintf(text, sizeof text, "unix_socket_directories = '\"");
    for (const char *p = s->dir; *p; p++) {
        if (*p == '\'')
            text[o++] = '\'';
        text[o++] = *p;
    }
    snprintf(text + o, sizeof text - o, "\"'\n");
    snprintf(path, sizeof path, "%s/pgbank.conf", s->pgdata);
    if (write_file(path, text, 0, ra) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not write %s: %s",
                            path, strerror(errno));
    return 0;
}

static int start_cluster(const srv *s, const pgbank__runas *ra, const char *bindir,
                         char *err, size_t errlen)
{
    char log[PATH_MAX + 16], prog[PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    snprintf(prog, sizeof prog, "%s/pg_ctl", bindir);
    /* pg_ctl's own complaints land in server.log too: one place to look. */
    int logfd = open_log(log, ra, 0);
    if (logfd < 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not open %s: %s",
                            log, strerror(errno));
    char pgdata[PATH_MAX];
    pgbank__strlcpy(pgdata, s->pgdata, sizeof pgdata);
    char *argv[] = {prog, "-D", pgdata, "-l", log, "-w", "-t", "60", "-s",
                    "start", NULL};
    int rc = run_program(argv, ra, s->dir, logfd, err, errlen);
    close(logfd);
    if (rc < 0)
        return rc;
    if (rc != 0 || !is_running(s)) {
        char tail[512];
        log_tail(log, tail, sizeof tail);
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "could not start PostgreSQL (pg_ctl exit %d); %s says: %s",
                            rc, log, tail);
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
                 !(state && strcmp(state, "42P04") == 0);
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
    char log[PATH_MAX + 16], prog[PATH_MAX + 16], pgdata[PATH_MAX];
    snprintf(log, sizeof log, "%s/server.log", s->dir);
    snprintf(prog, sizeof prog, "%s/pg_ctl", bindir);
    pgbank__strlcpy(pgdata, s->pgdata, sizeof pgdata);
    int logfd = open_log(log, ra, 0);
    char *argv[] = {prog, "-D", pgdata, "-m", "fast", "-w", "-t", "60", "-s",
                    "stop", NULL};
    int rc = run_program(argv, ra, s->dir, logfd, err, errlen);
    if (logfd >= 0)
        close(logfd);
    if (rc > 0) {
        char tail[512];
        log_tail(log, tail, sizeof tail);
        rc = pgbank__fail(PGBANK_ESERVER, err, errlen,
                          "could not stop PostgreSQL (pg_ctl exit %d); %s says: %s",
                          rc, log, tail);
    }
    return rc;
}

PGBANK__API int pgbank_server_start(const char *data_dir, char *err, size_t errlen)
{
    srv s;
    pgbank__runas ra;
    char bindir[PATH_MAX];
    int rc = srv_init(&s, data_dir, err, errlen);
    if (rc == 0)
        rc = make_dir(&s, err, errlen);
    if (rc != 0)
        return rc;
    int lock = lock_dir(&s, err, errlen);
    if (lock < 0)
        return lock;
    if (is_initialised(&s) && is_running(&s)) {
        close(lock); /* the reuse path: no fork, no connection */
        return 0;
    }
    rc = server_account(&s, &ra, err, errlen);
    if (rc == 0 && ra.drop) {
        rc = grant_search(&s, &ra, err, errlen);
        if (rc == 0)
            rc = chown_tree(&s, &ra, err, errlen);
    }
    if (rc == 0)
        rc = find_bindir(&s, bindir, sizeof bindir, err, errlen);
    if (rc == 0 && !is_initialised(&s))
        rc = init_cluster(&s, &ra, bindir, err, errlen);
    if (rc == 0)
        rc = write_socket_conf(&s, &ra, err, errlen);
    if (rc == 0)
        rc = start_cluster(&s, &ra, bindir, err, errlen);
    if (rc == 0) {
        rc = create_database(&s, err, errlen);
        /* Running means ready to the reuse path, which never checks for
         * the database: so do not leave a server without it. */
        if (rc != 0)
            (void)stop_cluster(&s, &ra, bindir, NULL, 0);
    }
    close(lock);
    return rc;
}

PGBANK__API int pgbank_server_stop(const char *data_dir, char *err, size_t errlen)
{
    srv s;
    pgbank__runas ra;
    char bindir[PATH_MAX];
    int rc = srv_init(&s, data_dir, err, errlen);
    if (rc != 0)
        return rc;
    if (!is_initialised(&s) || !is_running(&s))
        return 0;
    int lock = lock_dir(&s, err, errlen);
    if (lock < 0)
        return lock;
    if (is_running(&s)) {
        rc = server_account(&s, &ra, err, errlen);
        if (rc == 0)
            rc = find_bindir(&s, bindir, sizeof bindir, err, errlen);
        if (rc == 0)
            rc = stop_cluster(&s, &ra, bindir, err, errlen);
    }
    close(lock);
    return rc;
}

PGBANK__API int pgbank_server_status(const char *data_dir)
{
    srv s;
    int rc = srv_init(&s, data_dir, NULL, 0);
    if (rc != 0)
        return rc;
    if (!is_initialised(&s))
        return PGBANK_ENOTFOUND;
    return is_running(&s) ? 1 : 0;
}

PGBANK__API int pgbank_server_conninfo(const char *data_dir, char *buf, size_t len)
{
    srv s;
    if (!buf || len == 0)
        return PGBANK_EINVAL;
    buf[0] = '\0';
    if (srv_init(&s, data_dir, NULL, 0) != 0)
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
    if (!buf || len == 0 || srv_init(&s, data_dir, NULL, 0) != 0)
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
        absolute_path(raw, buf, len) != 0)
        return PGBANK_EINVAL;
    return 0;
}
