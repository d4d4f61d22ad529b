/*
 * account.c - who runs the private server, and how that account reaches
 * its data directory (see server.h).
 *
 * initdb and postgres refuse to run as root, so as root the server runs as
 * an unprivileged account (postgres, or $PGBANK_SERVER_USER), which must be
 * able to search every directory above D.  Root's default D is under
 * /root (0700).  Opening those directories to every local user (o+x) is
 * what pgbank must not do; a POSIX ACL entry "u:ACCOUNT:--x" lets that one
 * account through and nobody else.  pgbank writes the ACL itself, as the
 * kernel's "system.posix_acl_access" extended attribute (libacl and
 * setfacl are often not installed), merging its entry into whatever ACL is
 * there.
 */
#include "internal.h"
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

static void runas_from_pw(pgbank__runas *ra, const struct passwd *pw)
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
}

int pgbank__server_account(pgbank__runas *ra, char *err, size_t errlen)
{
    memset(ra, 0, sizeof *ra);
    if (geteuid() != 0) {
        /* No lookup: this is also the reuse path, kept cheap. */
        ra->uid = geteuid();
        ra->gid = getegid();
        snprintf(ra->name, sizeof ra->name, "uid %u", (unsigned)ra->uid);
        return 0;
    }
    struct passwd pwbuf, *pw = NULL;
    char buf[4096];
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
    runas_from_pw(ra, pw);
    return 0;
}

/* --- POSIX ACLs, as the kernel stores them ------------------------------ */

#define ACL_XATTR "system.posix_acl_access"
#define ACL_XATTR_VERSION 2
#define ACL_MAX 64
#define ACL_NO_ID 0xFFFFFFFFu
enum { TAG_USER_OBJ = 0x01, TAG_USER = 0x02, TAG_GROUP_OBJ = 0x04, TAG_GROUP = 0x08,
       TAG_MASK = 0x10, TAG_OTHER = 0x20 };
#define PERM_X 1u

typedef struct acl_entry {
    unsigned tag, perm;
    uint32_t id;
} acl_entry;

typedef struct acl {
    acl_entry e[ACL_MAX];
    int n;
} acl;

static void acl_add(acl *a, unsigned tag, unsigned perm, uint32_t id)
{
    if (a->n < ACL_MAX)
        a->e[a->n++] = (acl_entry){tag, perm, id};
}

static acl_entry *acl_find(acl *a, unsigned tag, uint32_t id)
{
    for (int i = 0; i < a->n; i++)
        if (a->e[i].tag == tag && (id == ACL_NO_ID || a->e[i].id == id))
            return &a->e[i];
    return NULL;
}

/* The directory's ACL, or the one its mode bits amount to.  Returns 0, or
 * -1 with errno (EINVAL: an ACL this code does not understand). */
static int acl_read(int fd, const struct stat *st, acl *a)
{
    unsigned char buf[4 + 8 * ACL_MAX];
    a->n = 0;
    ssize_t n = fgetxattr(fd, ACL_XATTR, buf, sizeof buf);
    if (n < 0) {
        if (errno != ENODATA && errno != ENOTSUP)
            return -1;
        acl_add(a, TAG_USER_OBJ, (st->st_mode >> 6) & 7, ACL_NO_ID);
        acl_add(a, TAG_GROUP_OBJ, (st->st_mode >> 3) & 7, ACL_NO_ID);
        acl_add(a, TAG_OTHER, st->st_mode & 7, ACL_NO_ID);
        return 0;
    }
    uint32_t version = buf[0] | buf[1] << 8 | buf[2] << 16 | (uint32_t)buf[3] << 24;
    if (n < 4 || (n - 4) % 8 != 0 || version != ACL_XATTR_VERSION) {
        errno = EINVAL;
        return -1;
    }
    for (ssize_t o = 4; o < n; o += 8) {
        const unsigned char *p = buf + o;
        acl_add(a, p[0] | p[1] << 8, p[2] | p[3] << 8,
                p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24);
    }
    return 0;
}

static int in_groups(const pgbank__runas *ra, uint32_t gid)
{
    if (gid == ra->gid)
        return 1;
    for (int i = 0; i < ra->ngroups; i++)
        if (gid == ra->groups[i])
            return 1;
    return 0;
}

/* The kernel's access check (acl(5), "access check algorithm") for search. */
static int may_search(acl *a, const struct stat *st, const pgbank__runas *ra)
{
    if (st->st_uid == ra->uid)
        return (acl_find(a, TAG_USER_OBJ, ACL_NO_ID)->perm & PERM_X) != 0;
    acl_entry *m = acl_find(a, TAG_MASK, ACL_NO_ID);
    unsigned mask = m ? m->perm : 7;
    acl_entry *u = acl_find(a, TAG_USER, ra->uid);
    if (u)
        return (u->perm & mask & PERM_X) != 0;
    int matched = 0;
    for (int i = 0; i < a->n; i++) {
        acl_entry *e = &a->e[i];
        uint32_t gid = e->tag == TAG_GROUP_OBJ ? st->st_gid : e->id;
        if ((e->tag == TAG_GROUP_OBJ || e->tag == TAG_GROUP) && in_groups(ra, gid)) {
            if (e->perm & mask & PERM_X)
                return 1;
            matched = 1;
        }
    }
    return matched ? 0 : (acl_find(a, TAG_OTHER, ACL_NO_ID)->perm & PERM_X) != 0;
}

static int entry_order(const void *x, const void *y)
{
    const acl_entry *a = x, *b = y;
    if (a->tag != b->tag)
        return a->tag < b->tag ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Adds "u:uid:--x" to a, raising the mask only where that gives nothing to
 * anyone else.  Returns 0, or -1 when the mask would widen another entry. */
static int acl_grant(acl *a, uint32_t uid)
{
    acl_entry *u = acl_find(a, TAG_USER, uid);
    if (u)
        u->perm |= PERM_X;
    else
        acl_add(a, TAG_USER, PERM_X, uid);
    acl_entry *m = acl_find(a, TAG_MASK, ACL_NO_ID);
    if (!m) {
        /* A minimal ACL: the new mask covers exactly the group class
         * (the owning group and our entry), so nobody's access changes. */
        unsigned mask = PERM_X;
        for (int i = 0; i < a->n; i++)
            if (a->e[i].tag == TAG_GROUP_OBJ || a->e[i].tag == TAG_USER ||
                a->e[i].tag == TAG_GROUP)
                mask |= a->e[i].perm;
        acl_add(a, TAG_MASK, mask, ACL_NO_ID);
    } else if (!(m->perm & PERM_X)) {
        for (int i = 0; i < a->n; i++) {
            const acl_entry *e = &a->e[i];
            if ((e->tag == TAG_GROUP_OBJ || e->tag == TAG_GROUP ||
                 (e->tag == TAG_USER && e->id != uid)) &&
                (e->perm & PERM_X))
                return -1;
        }
        m->perm |= PERM_X;
    }
    qsort(a->e, (size_t)a->n, sizeof a->e[0], entry_order);
    return 0;
}

static int acl_write(int fd, const acl *a)
{
    unsigned char buf[4 + 8 * ACL_MAX];
    size_t o = 0;
    buf[o++] = ACL_XATTR_VERSION;
    buf[o++] = 0;
    buf[o++] = 0;
    buf[o++] = 0;
    for (int i = 0; i < a->n; i++) {
        const acl_entry *e = &a->e[i];
        unsigned char *p = buf + o;
        p[0] = (unsigned char)e->tag;
        p[1] = (unsigned char)(e->tag >> 8);
        p[2] = (unsigned char)e->perm;
        p[3] = (unsigned char)(e->perm >> 8);
        for (int k = 0; k < 4; k++)
            p[4 + k] = (unsigned char)(e->id >> (8 * k));
        o += 8;
    }
    return fsetxattr(fd, ACL_XATTR, buf, o, 0);
}

/* --- Search access for the server account ------------------------------- */

/* Lets ra through one directory above D (fd, at `path`).  Returns 0 when
 * it could already pass, 1 when an entry was added, or a negative code. */
static int let_through(int fd, const char *path, const pgbank__srv *s, const pgbank__runas *ra,
                       char *err, size_t errlen)
{
    struct stat st;
    acl a;
    if (fstat(fd, &st) != 0 || acl_read(fd, &st, &a) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not read the permissions of %s: %s",
                            path, errno == EINVAL ? "an ACL pgbank does not understand"
                                                  : strerror(errno));
    if (may_search(&a, &st, ra))
        return 0;
    const char *n = ra->name;
    if (st.st_uid != 0) {
        struct passwd *pw = getpwuid(st.st_uid);
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "the server account '%s' cannot reach %s: it may not search %s, "
                            "which belongs to %s and which pgbank will not change; choose a "
                            "--data-dir '%s' can reach, or let it through yourself "
                            "(setfacl -m u:%s:x %s)",
                            n, s->dir, path, pw ? pw->pw_name : "another user", n, n, path);
    }
    if (acl_grant(&a, ra->uid) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "the server account '%s' cannot reach %s: %s has an ACL whose mask "
                            "withholds search, and raising it would also let other entries "
                            "through; let '%s' through yourself (setfacl -m u:%s:x %s) or "
                            "choose another --data-dir",
                            n, s->dir, path, n, n, path);
    if (acl_write(fd, &a) != 0) {
        int e = errno;
        if (e != ENOTSUP)
            return pgbank__fail(PGBANK_ESERVER, err, errlen,
                                "could not let '%s' search %s (ACL entry u:%s:--x): %s", n, path,
                                n, strerror(e));
        struct passwd *pw = getpwuid(ra->uid);
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "the server account '%s' cannot reach %s: it may not search %s, "
                            "and that file system keeps no POSIX ACLs, so pgbank cannot let "
                            "that account alone through; use a data directory it can reach "
                            "(for example --data-dir %s/pgbank, under its home), or, if every "
                            "local user may pass through %s, run 'chmod o+x %s' yourself",
                            n, s->dir, path, pw && pw->pw_dir[0] == '/' ? pw->pw_dir
                                                                        : "/var/lib/pgbank",
                            path, path);
    }
    if (fstat(fd, &st) != 0 || acl_read(fd, &st, &a) != 0 || !may_search(&a, &st, ra))
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "the server account '%s' still cannot search %s after pgbank "
                            "added an ACL entry for it", n, path);
    return 1;
}

/* Every directory above D the kernel walks through for the server: the
 * prefixes of D's path as given and of its real path (links resolved). */
static int walk_prefixes(const char *path, const pgbank__srv *s, const pgbank__runas *ra,
                         char *changed, size_t clen, char *err, size_t errlen)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    for (size_t i = 0; i < n; i++) {
        if (path[i] != '/')
            continue;
        size_t plen = i == 0 ? 1 : i;
        memcpy(p, path, plen);
        p[plen] = '\0';
        int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return pgbank__fail(PGBANK_ESERVER, err, errlen, "could not open %s: %s", p,
                                strerror(errno));
        int rc = let_through(fd, p, s, ra, err, errlen);
        close(fd);
        if (rc < 0)
            return rc;
        size_t cl = strlen(changed);
        if (rc == 1 && snprintf(changed + cl, clen - cl, "%s%s", cl ? ", " : "", p) < 0)
            changed[cl] = '\0';
    }
    return 0;
}

int pgbank__grant_search(const pgbank__srv *s, const pgbank__runas *ra, char *err,
                         size_t errlen)
{
    char changed[2048] = "", real[PATH_MAX];
    int rc = walk_prefixes(s->dir, s, ra, changed, sizeof changed, err, errlen);
    if (rc == 0 && realpath(s->dir, real) && strcmp(real, s->dir) != 0)
        rc = walk_prefixes(real, s, ra, changed, sizeof changed, err, errlen);
    if (rc)
        return rc;
    if (changed[0])
        fprintf(stderr,
                "pgbank: let '%s' search %s (an ACL entry u:%s:--x for that account "
                "alone) so the private server can reach %s\n",
                ra->name, changed, ra->name, s->dir);
    /* The kernel has the last word: the account itself enters D. */
    pgbank__proc_opts o;
    pgbank__proc_opts_init(&o);
    o.runas = ra;
    o.cwd = s->dir;
    char why[512];
    if (pgbank__proc_ops(&o, why, sizeof why) != 0)
        return pgbank__fail(PGBANK_ESERVER, err, errlen,
                            "the server account '%s' cannot reach %s: %s", ra->name, s->dir,
                            why);
    return 0;
}
