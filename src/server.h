/*
 * server.h - the private server's parts, internal to the library:
 *   server.c   cluster control (initdb, pg_ctl, the database) and the
 *              public pgbank_server_* API;
 *   datadir.c  the data directory D as a boundary: where it may be, what
 *              may already be in it, and how root reads from it (through
 *              descriptors, never following a link);
 *   account.c  who runs the server, and the search access that account
 *              needs on D's ancestors (a POSIX ACL entry for it alone).
 *
 * The rule all three keep (docs/SECURITY.md): run as root, pgbank never
 * follows a link it did not make, never changes the owner or mode of
 * anything it did not create, and writes nothing inside D itself - the
 * server account writes its own files (proc.h's child ops).
 */
#ifndef PGBANK_SERVER_H
#define PGBANK_SERVER_H

#include "proc.h"

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define PGBANK__SERVER_PORT "5432"
#define PGBANK__SOCKET_NAME ".s.PGSQL.5432"
#define PGBANK__LOCK_NAME "pgbank.lock"

typedef struct pgbank__srv {
    char dir[PATH_MAX];    /* D, absolute, no trailing '/' */
    char pgdata[PATH_MAX]; /* D/pgdata */
    int dfd;               /* D, opened by pgbank__datadir_open(); -1 before */
} pgbank__srv;

/* Makes `in` absolute and tidy ("//" and "/./" folded, no trailing '/'). */
int pgbank__absolute_path(const char *in, char *out, size_t len);

/* Resolves and checks the path of a data directory (length, characters);
 * every entry point starts here.  Touches nothing. */
int pgbank__srv_init(pgbank__srv *s, const char *data_dir, char *err, size_t errlen);

/* Closes what srv_init and datadir_open opened. */
void pgbank__srv_close(pgbank__srv *s);

/* Opens D as s->dfd, refusing what pgbank must not take: a symbolic link,
 * not a directory, a directory owned by anyone but the server account `ra`
 * (or, not as root, the current user), one with group or other permission
 * bits, or one that is neither empty nor pgbank's (pgbank.lock or
 * pgdata/PG_VERSION in it).  Never changes an existing D.  With `create`,
 * a missing D is made (mkdir 0700, then given to ra through the new
 * descriptor); without, a missing D or one that is not pgbank's is
 * PGBANK_ENOTFOUND.  Returns 0 or PGBANK_ESERVER with what to do in err. */
int pgbank__datadir_open(pgbank__srv *s, const pgbank__runas *ra, int create, char *err,
                         size_t errlen);

/* Takes D/pgbank.lock (close the returned fd to release it), creating it
 * when missing (O_EXCL, then given to ra); refuses a link or a non-file. */
int pgbank__datadir_lock(pgbank__srv *s, const pgbank__runas *ra, char *err, size_t errlen);

/* Opens, for reading, a regular file at `rel` under D ("pgdata/PG_VERSION")
 * without following any link on the way.  -1 with errno on failure. */
int pgbank__open_in(const pgbank__srv *s, const char *rel);

/* Reads at most len - 1 bytes of `rel` under D into buf (NUL-terminated).
 * Returns the byte count or -1. */
ssize_t pgbank__read_in(const pgbank__srv *s, const char *rel, char *buf, size_t len);

/* The last few lines of a log in D, on one line ("a | b | c"), for err. */
void pgbank__log_tail(const pgbank__srv *s, const char *name, char *out, size_t outlen);

/* Who runs the server: as root $PGBANK_SERVER_USER or postgres, never a
 * root account; otherwise the current user (drop = 0). */
int pgbank__server_account(pgbank__runas *ra, char *err, size_t errlen);

/* As root: makes sure ra can search every directory above D, adding a
 * POSIX ACL entry "u:ACCOUNT:--x" (merged into an existing ACL, mask kept
 * effective) to root-owned ancestors that stop it - no one else gains
 * anything.  Says once on stderr what it granted.  Refuses (with what to
 * do) where that would need changing a directory of another user, where
 * the file system holds no ACLs, or where raising the mask would widen
 * someone else's access. */
int pgbank__grant_search(const pgbank__srv *s, const pgbank__runas *ra, char *err,
                         size_t errlen);

#endif
