/*
 * datadir.c - the private server's data directory D as a boundary (see
 * server.h).  pgbank may run as root while D belongs to the server account,
 * which may plant links, FIFOs or foreign files in it; so everything here
 * works on descriptors: D is opened once with O_NOFOLLOW and checked through
 * that descriptor (no path re-resolved after a check), files under it are
 * reached with openat() one component at a time, never through a link, and
 * only read.  The one thing root creates in an existing D is the lock file,
 * with O_EXCL, and it gives only that file away.
 */
#include "internal.h"
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Long enough for initdb plus pg_ctl's own 60 s start timeout. */
#define LOCK_WAIT_S 180

int pgbank__absolute_path(const char *in, char *out, size_t len)
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
        size_t c, n = strlen(in);
        if (!getcwd(cwd, sizeof cwd) || (c = strlen(cwd)) + 1 + n >= sizeof tmp)
            return -1;
        memcpy(tmp, cwd, c);
        tmp[c] = '/';
        memcpy(tmp + c + 1, in, n + 1);
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

int pgbank__srv_init(pgbank__srv *s, const char *data_dir, char *err, size_t errlen)
{
    s->dfd = -1;
    if (!data_dir || !*data_dir)
        return pgbank__fail(PGBANK_EINVAL, err, errlen, "no data directory given");
    if (pgbank__absolute_path(data_dir, s->dir, sizeof s->dir) != 0)
        return pgbank__fail(PGBANK_EINVAL, err, errlen,
                            "cannot make the data directory path absolute");
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 2 - strlen(PGBANK__SOCKET_NAME);
    size_t n = strlen(s->dir);
    if (n > max)
        return pgbank__fail(PGBANK_EINVAL, err, errlen,
                            "data directory path too long for a unix socket "
                            "(%zu bytes, max %zu); choose a shorter --data-dir",
                            n, max);
    if (strcmp(s->dir, "/") == 0)
        return pgbank__fail(PGBANK_EINVAL, err, errlen,
                            "the data directory cannot be /; choose another --data-dir");
    /* pg_ctl puts the path inside "..." in a shell command, and libpq reads
     * a ',' in host as a list of hosts. */
    for (const char *p = s->dir; *p; p++)
        if (strchr("\"$`\\,", *p) || (unsigned char)*p < 0x20)
            return pgbank__fail(PGBANK_EINVAL, err, errlen,
                                "the data directory path contains a character "
                                "PostgreSQL tools cannot take (one of \" $ ` \\ , "
                                "or a control character); choose another --data-dir");
    if (snprintf(s->pgdata, sizeof s->pgdata, "%s/pgdata", s->dir) >= (int)sizeof s->pgdata)
        return pgbank__fail(PGBANK_EINVAL, err, errlen, "data directory path too long");
    return 0;
}

void pgbank__srv_close(pgbank__srv *s)
{
    if (s->dfd >= 0)
        close(s->dfd);
    s->dfd = -1;
}

/* --- Reading under D ------------------------------------------------------ */

int pgbank__open_in(const pgbank__srv *s, const char *rel)
{
    char part[NAME_MAX + 1];
    int at = s->dfd;
    for (;;) {
        size_t n = strcspn(rel, "/");
        if (n == 0 || n > NAME_MAX) {
            if (at != s->dfd)
                close(at);
            errno = EINVAL;
            return -1;
        }
        memcpy(part, rel, n);
        part[n] = '\0';
        rel += n;
        int last = *rel == '\0';
        /* O_NONBLOCK: a FIFO planted under D must not hang us. */
        int fd = openat(at, part,
                        O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? O_NONBLOCK : O_DIRECTORY));
        int e = errno;
        if (at != s->dfd)
            close(at);
        if (fd < 0) {
            errno = e;
            return -1;
        }
        if (last) {
            struct stat st;
            if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                errno = EINVAL;
                return -1;
            }
            return fd;
        }
        at = fd;
        rel++;
    }
}

ssize_t pgbank__read_in(const pgbank__srv *s, const char *rel, char *buf, size_t len)
{
    int fd = pgbank__open_in(s, rel);
    if (fd < 0 || len == 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

void pgbank__log_tail(const pgbank__srv *s, const char *name, char *out, size_t outlen)
{
    char buf[2048];
    out[0] = '\0';
    int fd = pgbank__open_in(s, name);
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

/* --- Opening and checking D ----------------------------------------------- */

/* mkdir -p of D's parent: directories above D that pgbank makes are its
 * own (0700, root's when run as root; account.c lets the server through). */
static int make_parents(const pgbank__srv *s, char *err, size_t errlen)
{
    char p[PATH_MAX];
    pgbank__strlcpy(p, s->dir, sizeof p);
    char *slash = strrchr(p, '/');
    if (!slash || slash == p)
        return 0;
    *slash = '\0';
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char save = *c;
        *c = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not create %s: %s", p,
                                strerror(errno));
        *c = save;
        if (!save)
            return 0;
    }
}

/* 1 when D holds nothing, -1 on error. */
static int is_empty(int dfd)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

/* pgbank's own: its lock file, or a cluster it initialised. */
static int is_pgbanks(const pgbank__srv *s)
{
    struct stat st;
    if (fstatat(s->dfd, PGBANK__LOCK_NAME, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        return 1;
    int fd = pgbank__open_in(s, "pgdata/PG_VERSION");
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

static void owner_name(uid_t uid, char *out, size_t len)
{
    struct passwd *pw = getpwuid(uid);
    if (pw)
        snprintf(out, len, "'%s'", pw->pw_name);
    else
        snprintf(out, len, "uid %u", (unsigned)uid);
}

/* D is not a directory pgbank may use: say why and what to do. */
static int refuse(const pgbank__srv *s, char *err, size_t errlen, const char *why,
                  const char *todo)
{
    return pgbank__fail(PGBANK_ESERVER, err, errlen,
                        "refusing the data directory %s: %s; %s",
                        s->dir, why, todo);
}

static int check_existing(pgbank__srv *s, const struct stat *st, const pgbank__runas *ra,
                          int create, char *err, size_t errlen)
{
    char why[512], who[96], todo[PATH_MAX + 256];
    uid_t want = ra->drop ? ra->uid : geteuid();
    if (st->st_uid != want) {
        owner_name(st->st_uid, who, sizeof who);
        if (ra->drop)
            snprintf(why, sizeof why,
                     "it belongs to %s, not to the server account '%s', and pgbank changes "
                     "the owner of nothing it did not create",
                     who, ra->name);
        else {
            char me[96];
            owner_name(geteuid(), me, sizeof me);
            snprintf(why, sizeof why, "it belongs to %s, not to you (%s)", who, me);
        }
        if (ra->drop)
            snprintf(todo, sizeof todo,
                     "choose another --data-dir: a missing one, which pgbank creates, or "
                     "an empty one owned by '%s' with mode 0700",
                     ra->name);
        else
            snprintf(todo, sizeof todo,
                     "choose another --data-dir: a missing one, which pgbank creates, or "
                     "an empty one of yours with mode 0700");
        return refuse(s, err, errlen, why, todo);
    }
    if (st->st_mode & 077) {
        snprintf(why, sizeof why,
                 "its mode %04o lets others in, the server trusts every connection "
                 "through the socket inside, and pgbank changes the mode of nothing it "
                 "did not create",
                 (unsigned)(st->st_mode & 07777));
        snprintf(todo, sizeof todo, "make it private yourself (chmod 700 %s) or choose "
                 "another --data-dir", s->dir);
        return refuse(s, err, errlen, why, todo);
    }
    if (is_pgbanks(s))
        return 0;
    int empty = is_empty(s->dfd);
    if (empty != 1 && is_pgbanks(s))
        return 0; /* its lock file came between the two looks */
    if (empty == 1)
        return create ? 0 : PGBANK_ENOTFOUND;
    if (!create)
        return PGBANK_ENOTFOUND;
    snprintf(todo, sizeof todo, "name an empty or missing directory with --data-dir "
             "(pgbank's own holds %s or pgdata/PG_VERSION)", PGBANK__LOCK_NAME);
    return refuse(s, err, errlen,
                  empty < 0 ? "its contents cannot be read"
                            : "it is not empty and not pgbank's, and pgbank takes over no "
                              "directory it did not create",
                  todo);
}

/* One attempt; *retry is set when the refusal may be another pgbank
 * process creating D this instant (between its mkdir, its fchown and its
 * lock file). */
static int open_once(pgbank__srv *s, const pgbank__runas *ra, int create, int *retry, char *err,
                     size_t errlen)
{
    const int dflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int made = 0;
    pgbank__srv_close(s);
    s->dfd = open(s->dir, dflags);
    if (s->dfd < 0 && errno == ENOENT) {
        if (!create)
            return PGBANK_ENOTFOUND;
        int rc = make_parents(s, err, errlen);
        if (rc)
            return rc;
        char parent[PATH_MAX];
        pgbank__strlcpy(parent, s->dir, sizeof parent);
        char *base = strrchr(parent, '/');
        *base++ = '\0';
        int pfd = open(parent[0] ? parent : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
            return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not open %s: %s",
                                parent[0] ? parent : "/", strerror(errno));
        made = mkdirat(pfd, base, 0700) == 0;
        int e = errno;
        s->dfd = made || e == EEXIST ? openat(pfd, base, dflags) : -1;
        if (!made && e != EEXIST)
            errno = e;
        close(pfd);
    }
    if (s->dfd < 0) {
        int e = errno;
        struct stat lst;
        /* O_DIRECTORY | O_NOFOLLOW on a link says ENOTDIR or ELOOP. */
        if ((e == ELOOP || e == ENOTDIR) && lstat(s->dir, &lst) == 0 && S_ISLNK(lst.st_mode))
            e = ELOOP;
        if (e == ELOOP)
            return refuse(s, err, errlen,
                          "it is a symbolic link, and pgbank follows none for its data",
                          "pass the directory it points to, if that one is meant for pgbank");
        if (e == ENOTDIR)
            return refuse(s, err, errlen, "it is not a directory", "choose another --data-dir");
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not open the data directory "
                            "%s: %s", s->dir, strerror(e));
    }
    struct stat st;
    if (fstat(s->dfd, &st) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not stat %s: %s", s->dir,
                            strerror(errno));
    /* Ours only if what we opened is what mkdir made: our own, and empty
     * (someone with write access to the parent may have swapped it). */
    if (made && st.st_uid == geteuid() && st.st_nlink == 2 && is_empty(s->dfd) == 1) {
        if (fchmod(s->dfd, 0700) != 0 ||
            (ra->drop && fchown(s->dfd, ra->uid, ra->gid) != 0))
            return pgbank__fail(PGBANK_ESERVER, err, errlen,
                                "could not give the new %s to the server account '%s': %s",
                                s->dir, ra->name, strerror(errno));
        return 0;
    }
    *retry = st.st_uid == geteuid() || is_pgbanks(s) == 0;
    int rc = check_existing(s, &st, ra, create, err, errlen);
    if (rc)
        pgbank__srv_close(s);
    return rc;
}

int pgbank__datadir_open(pgbank__srv *s, const pgbank__runas *ra, int create, char *err,
                         size_t errlen)
{
    for (int tries = 0;; tries++) {
        int retry = 0;
        int rc = open_once(s, ra, create, &retry, err, errlen);
        if (rc != PGBANK_ESERVER || !retry || tries >= 25)
            return rc;
        pgbank__sleep_ms(20);
    }
}

int pgbank__datadir_lock(pgbank__srv *s, const pgbank__runas *ra, char *err, size_t errlen)
{
    const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 3; tries++) {
        fd = openat(s->dfd, PGBANK__LOCK_NAME, flags);
        if (fd < 0 && errno == ENOENT) {
            fd = openat(s->dfd, PGBANK__LOCK_NAME, flags | O_CREAT | O_EXCL, 0600);
            /* Created by us this instant: the one file root gives away. */
            if (fd >= 0 && ra->drop && fchown(fd, ra->uid, ra->gid) != 0) {
                close(fd);
                return pgbank__fail(PGBANK_ESERVER, err, errlen,
                                    "could not give %s/%s to '%s': %s", s->dir,
                                    PGBANK__LOCK_NAME, ra->name, strerror(errno));
            }
        }
        if (fd < 0 && errno != EEXIST && errno != ENOENT)
            break;
    }
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "could not open the lock file %s/%s: %s; remove it (pgbank "
                            "makes a new one)",
                            s->dir, PGBANK__LOCK_NAME,
                            fd >= 0 ? "it is not a regular file"
                            : e == ELOOP ? "it is a symbolic link, and pgbank follows none"
                                         : strerror(e));
    }
    int64_t deadline = pgbank__now_ns() + (int64_t)LOCK_WAIT_S * 1000000000;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || pgbank__now_ns() > deadline) {
            int e = errno;
            close(fd);
            return pgbank__fail(e == EWOULDBLOCK ? PGBANK_ETIMEDOUT : PGBANK_ESERVER, err,
                                errlen, "could not lock %s/%s: %s", s->dir, PGBANK__LOCK_NAME,
                                e == EWOULDBLOCK ? "another pgbank process holds it"
                                                 : strerror(e));
        }
        pgbank__sleep_ms(10);
    }
    return fd;
}
