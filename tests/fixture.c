/*
 * fixture.c - sets up and cleans up the tests' database (CTest fixture
 * "db"), in the mode tests/with_server.sh chose.
 *
 * The throwaway server (the default):
 *   fixture start STATE   makes a directory with mkdtemp (/tmp/pgbank-test-
 *                         XXXXXX: a name nobody can guess, created by us,
 *                         0700), starts a private server in its "db" and
 *                         creates pgbank's schema; then writes the data
 *                         directory's path and the identity of the mkdtemp
 *                         directory into STATE, where tests/with_server.sh
 *                         reads it.
 *   fixture stop STATE    stops that server and removes exactly what start
 *                         made: the directory STATE names, only if it is
 *                         still the one start created (same device and
 *                         inode, ours, private), through descriptors.
 *
 * A database named from outside (PGBANK_TEST_DATABASE_URL, e.g. a Citus
 * coordinator's), which is never started, stopped or removed here:
 *   fixture start STATE   records into STATE which databases, roles and
 *                         schemas exist, and which relations and functions
 *                         the current schema holds (by oid, with the
 *                         cluster's system identifier and the database's
 *                         oid), then runs pgbank init there.  On a Citus
 *                         coordinator whose accounts init left a local
 *                         table, it then distributes pgbank's tables as
 *                         docs/SCALING.md tells a user to, so that the tests
 *                         run on distributed tables (nothing to do once
 *                         init distributes them itself).  When that fails
 *                         the start fails, saying why, and nothing is
 *                         distributed; PGBANK_TEST_CITUS_TABLES=local
 *                         (for work on the tests themselves) lets them
 *                         run on local tables then, saying so.
 *   fixture stop STATE    drops what appeared since, in that same database
 *                         only: the databases, roles and schemas the tests
 *                         created, and pgbank's tables and functions when
 *                         init created them.  Temporary schemas and names
 *                         PostgreSQL and Citus reserve (pg_*, citus*) are
 *                         left alone.
 *
 * Stop runs even when tests fail.  A start first cleans up what an earlier,
 * killed run left behind in STATE, under the same rules.
 */
#include "pgbank.h"
#include "rmtree.h"

#include <libpq-fe.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX "/tmp/pgbank-test-"

typedef struct state {
    char base[256]; /* the mkdtemp directory */
    char dir[300];  /* base/db: the data directory */
    uintmax_t dev, ino;
} state;

static int read_state(const char *path, state *st)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[2][400];
    int ok = fgets(line[0], sizeof line[0], f) && fgets(line[1], sizeof line[1], f);
    fclose(f);
    errno = EINVAL;
    if (!ok)
        return -1;
    line[0][strcspn(line[0], "\n")] = '\0';
    size_t n = strlen(line[0]);
    if (n < 4 || n >= sizeof st->dir || strcmp(line[0] + n - 3, "/db") != 0 ||
        sscanf(line[1], "%ju %ju", &st->dev, &st->ino) != 2)
        return -1;
    errno = 0;
    memcpy(st->dir, line[0], n + 1);
    memcpy(st->base, line[0], n - 3);
    st->base[n - 3] = '\0';
    return 0;
}

static int is_external_record(const char *path);

/* Stops and removes what STATE names, if it is what a start made. */
static int remove_recorded(const char *path, int missing_ok)
{
    if (is_external_record(path)) {
        fprintf(stderr, "fixture: %s was left by a run against a database named by "
                "PGBANK_TEST_DATABASE_URL; what that run created there stays (run the tests "
                "against it again to clean it up)\n", path);
        unlink(path);
        return missing_ok ? 0 : 1;
    }
    state st;
    char err[1024];
    struct stat sb;
    if (read_state(path, &st) != 0) {
        if (missing_ok && errno == ENOENT)
            return 0;
        fprintf(stderr, "fixture: %s does not name a throwaway server\n", path);
        return 1;
    }
    if (strncmp(st.base, PREFIX, strlen(PREFIX)) != 0 || lstat(st.base, &sb) != 0 ||
        !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid() || (sb.st_mode & 007) != 0 ||
        (uintmax_t)sb.st_dev != st.dev || (uintmax_t)sb.st_ino != st.ino) {
        fprintf(stderr, "fixture: %s is not the directory this fixture made; "
                "left alone\n", st.base);
        unlink(path);
        return 1;
    }
    int rc = 0;
    if (pgbank_server_status(st.dir) == 1 && pgbank_server_stop(st.dir, err, sizeof err) != 0) {
        fprintf(stderr, "fixture: %s\n", err);
        rc = 1;
    }
    if (rmtree(st.base) != 0) {
        fprintf(stderr, "fixture: could not remove %s: %s\n", st.base, strerror(errno));
        rc = 1;
    }
    unlink(path);
    if (rc == 0)
        printf("throwaway server in %s stopped and removed\n", st.dir);
    return rc;
}

static int start(const char *path)
{
    char err[1024], conninfo[1024], tmp[4200];
    state st;
    struct stat sb;
    (void)remove_recorded(path, 1); /* a killed run's */
    snprintf(st.base, sizeof st.base, PREFIX "XXXXXX");
    if (!mkdtemp(st.base) || stat(st.base, &sb) != 0) {
        perror("fixture: mkdtemp");
        return 1;
    }
    snprintf(st.dir, sizeof st.dir, "%s/db", st.base);
    /* Recorded first: a failed start is still removed by stop. */
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n%ju %ju\n", st.dir, (uintmax_t)sb.st_dev,
                      (uintmax_t)sb.st_ino) < 0 ||
        fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "fixture: could not write %s: %s\n", path, strerror(errno));
        rmdir(st.base);
        return 1;
    }
    if (pgbank_server_start(st.dir, err, sizeof err) != 0) {
        fprintf(stderr, "fixture: %s\n", err);
        return 1;
    }
    if (pgbank_server_conninfo(st.dir, conninfo, sizeof conninfo) != 0 ||
        pgbank_schema_init(conninfo, err, sizeof err) != 0) {
        fprintf(stderr, "fixture: init: %s\n", err);
        return 1;
    }
    printf("throwaway server running in %s\n", st.dir);
    return 0;
}

/* --- a database named from outside ------------------------------------- */

#define EXT_TAG "external"

/* What the tests may create, and how each is listed and dropped.  `list`
 * yields (oid, DROP statement) for every object; `keep` excludes what is
 * never the tests' (reserved names, temporary schemas, ourselves). */
typedef struct ext_kind {
    const char *name, *plural, *list;
} ext_kind;

static const ext_kind ext_kinds[] = {
    {"database", "databases",
     "SELECT oid, format('DROP DATABASE IF EXISTS %I WITH (FORCE)', datname) FROM pg_database"
     " WHERE datname <> current_database()"},
    {"schema", "schemas",
     "SELECT oid, format('DROP SCHEMA IF EXISTS %I CASCADE', nspname) FROM pg_namespace"
     " WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT LIKE 'citus%'"
     " AND nspname <> 'information_schema'"},
    {"relation", "relations",
     "SELECT c.oid, format('DROP %s IF EXISTS %I.%I CASCADE', CASE c.relkind WHEN 'v' THEN"
     " 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN"
     " 'FOREIGN TABLE' ELSE 'TABLE' END, n.nspname, c.relname) FROM pg_class c"
     " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
     " AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
     " ORDER BY c.relkind = 'v' DESC, c.relkind = 'S'"},
    {"function", "functions",
     "SELECT p.oid, format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)"
     " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
     " WHERE n.nspname = current_schema()"},
    {"role", "roles",
     "SELECT oid, format('DROP OWNED BY %1$I CASCADE; DROP ROLE IF EXISTS %1$I', rolname)"
     " FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' AND rolname NOT LIKE 'citus%'"
     " AND rolname <> current_user"},
};
#define EXT_NKINDS (sizeof ext_kinds / sizeof ext_kinds[0])

/* The cluster and database: "system_identifier database_oid". */
#define EXT_IDENTITY                                                                       \
    "SELECT system_identifier || ' ' || (SELECT oid FROM pg_database"                     \
    " WHERE datname = current_database()) FROM pg_control_system()"

static int is_external_record(const char *path)
{
    char line[64] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    return ok && strncmp(line, EXT_TAG " ", strlen(EXT_TAG) + 1) == 0;
}

static PGconn *ext_connect(const char *conninfo, const char *where)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg));
        pgbank_conninfo_scrub(conninfo, msg, sizeof msg);
        fprintf(stderr, "fixture: could not connect to %s: %s", where, msg);
        PQfinish(pg);
        return NULL;
    }
    PQclear(PQexec(pg, "SET client_min_messages = warning"));
    return pg;
}

/* One value of a one-row query into out; 0 or -1 (said). */
static int ext_value(PGconn *pg, const char *sql, char *out, size_t len)
{
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
    if (ok)
        snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "fixture: %s: %s", sql, PQerrorMessage(pg));
    PQclear(r);
    return ok ? 0 : -1;
}

/* Writes the snapshot of the database into STATE (atomically). */
static int ext_snapshot(PGconn *pg, const char *path)
{
    char identity[128], tmp[4200];
    if (ext_value(pg, EXT_IDENTITY, identity, sizeof identity) != 0)
        return -1;
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "fixture: could not write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fprintf(f, EXT_TAG " %s\n", identity);
    for (size_t k = 0; k < EXT_NKINDS; k++) {
        PGresult *r = PQexec(pg, ext_kinds[k].list);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "fixture: listing the %s: %s", ext_kinds[k].plural,
                    PQerrorMessage(pg));
            PQclear(r);
            fclose(f);
            unlink(tmp);
            return -1;
        }
        for (int i = 0; i < PQntuples(r); i++)
            fprintf(f, "%s %s\n", ext_kinds[k].name, PQgetvalue(r, i, 0));
        PQclear(r);
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "fixture: could not write %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Is `oid` of kind k in the snapshot text? (lines "kind oid") */
static int ext_recorded(const char *snap, size_t k, const char *oid)
{
    char needle[96];
    snprintf(needle, sizeof needle, "\n%s %s\n", ext_kinds[k].name, oid);
    return strstr(snap, needle) != NULL;
}

/* Drops what appeared in the database since the snapshot in STATE. */
static int ext_cleanup(const char *path, const char *conninfo, const char *where, int missing_ok)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (missing_ok && errno == ENOENT)
            return 0;
        fprintf(stderr, "fixture: %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *snap = malloc(cap);
    if (snap)
        snap[n++] = '\n';
    while (snap && (got = fread(snap + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 >= cap) {
            char *bigger = realloc(snap, cap *= 2);
            if (!bigger)
                free(snap);
            snap = bigger;
        }
    }
    fclose(f);
    if (!snap) {
        fprintf(stderr, "fixture: out of memory\n");
        return 1;
    }
    snap[n] = '\0';
    char recorded[128] = "", identity[128];
    sscanf(snap, "\n" EXT_TAG " %127[0-9 ]", recorded);
    PGconn *pg = ext_connect(conninfo, where);
    if (!pg) {
        free(snap);
        return 1;
    }
    int rc = 0, dropped[EXT_NKINDS] = {0}, total = 0;
    if (ext_value(pg, EXT_IDENTITY, identity, sizeof identity) != 0 ||
        strcmp(identity, recorded) != 0) {
        fprintf(stderr, "fixture: %s records another database than %s; nothing dropped\n",
                path, where);
        rc = 1;
        goto out;
    }
    for (size_t k = 0; k < EXT_NKINDS; k++) {
        PGresult *r = PQexec(pg, ext_kinds[k].list);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "fixture: listing the %s: %s", ext_kinds[k].plural,
                    PQerrorMessage(pg));
            rc = 1;
        }
        for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
            if (ext_recorded(snap, k, PQgetvalue(r, i, 0)))
                continue;
            PGresult *d = PQexec(pg, PQgetvalue(r, i, 1));
            if (PQresultStatus(d) != PGRES_COMMAND_OK) {
                fprintf(stderr, "fixture: %s: %s", PQgetvalue(r, i, 1), PQerrorMessage(pg));
                rc = 1;
            } else {
                dropped[k]++;
                total++;
            }
            PQclear(d);
        }
        PQclear(r);
    }
    printf("dropped from %s what the tests created:", where);
    for (size_t k = 0; k < EXT_NKINDS; k++)
        printf("%s %d %s", k ? "," : "", dropped[k],
               dropped[k] == 1 ? ext_kinds[k].name : ext_kinds[k].plural);
    printf("%s\n", total ? "" : " (nothing)");
out:
    PQfinish(pg);
    free(snap);
    if (rc == 0)
        unlink(path);
    return rc;
}

/* docs/SCALING.md's statements, "on the coordinator, after pgbank init",
 * in one transaction (sequential: Citus refuses DDL after a parallel
 * operation in the same transaction). */
static const char *const ext_citus_distribute[] = {
    "BEGIN",
    "SET LOCAL citus.multi_shard_modify_mode = sequential",
    "SELECT create_distributed_table('accounts', 'id')",
    "ALTER TABLE pgbank_journal DROP CONSTRAINT pgbank_journal_pkey",
    "ALTER TABLE pgbank_journal ADD PRIMARY KEY (account, seq)",
    "SELECT create_distributed_table('pgbank_journal', 'account', colocate_with := 'accounts')",
    "SELECT create_distributed_table('pgbank_keys', 'key', colocate_with := 'none')",
    "COMMIT",
};

/* On a Citus coordinator, pgbank's tables distributed as docs/SCALING.md
 * says, unless they already are.  0, or -1 (said). */
static int ext_distribute(PGconn *pg, const char *where)
{
    char v[64];
    if (ext_value(pg, "SELECT count(*) FROM pg_extension WHERE extname = 'citus'", v, sizeof v) != 0)
        return -1;
    if (strcmp(v, "0") == 0)
        return 0;
    if (ext_value(pg, "SELECT count(*) FROM pg_dist_partition"
                      " WHERE logicalrelid = to_regclass('accounts')", v, sizeof v) != 0)
        return -1;
    if (strcmp(v, "0") != 0) {
        printf("%s is a Citus coordinator; pgbank init distributed its tables\n", where);
        return 0;
    }
    for (size_t i = 0; i < sizeof ext_citus_distribute / sizeof ext_citus_distribute[0]; i++) {
        PGresult *r = PQexec(pg, ext_citus_distribute[i]);
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "fixture: %s is a Citus coordinator, and pgbank's tables could not be"
                    " distributed as docs/SCALING.md says: %s: %s", where, ext_citus_distribute[i],
                    PQerrorMessage(pg));
        PQclear(r);
        if (ok)
            continue;
        PQclear(PQexec(pg, "ROLLBACK"));
        const char *tables = getenv("PGBANK_TEST_CITUS_TABLES");
        if (tables && strcmp(tables, "local") == 0) {
            printf("PGBANK_TEST_CITUS_TABLES=local: the tests run on pgbank's tables left LOCAL to"
                   " the coordinator %s, not distributed\n", where);
            return 0;
        }
        return -1;
    }
    printf("%s is a Citus coordinator: accounts, pgbank_journal and pgbank_keys distributed"
           " as docs/SCALING.md says\n", where);
    return 0;
}

/* The named database's connection string (to free), and in `where` its
 * password-free form; NULL after saying why. */
static char *ext_conninfo(const char *url, char *where, size_t wherelen)
{
    char err[1024];
    char *conninfo = pgbank_conninfo_normalize(url, err, sizeof err);
    if (!conninfo) {
        fprintf(stderr, "fixture: PGBANK_TEST_DATABASE_URL: %s\n", err);
        return NULL;
    }
    pgbank_conninfo_redact(conninfo, where, wherelen);
    return conninfo;
}

static int ext_start(const char *path, const char *url)
{
    char err[1024], where[1024];
    char *conninfo = ext_conninfo(url, where, sizeof where);
    if (!conninfo)
        return 1;
    int rc = 1;
    /* A killed run's: its throwaway server, or what it left in this database. */
    if (is_external_record(path)) {
        if (ext_cleanup(path, conninfo, where, 1) != 0)
            unlink(path);
    } else {
        (void)remove_recorded(path, 1);
    }
    PGconn *pg = ext_connect(conninfo, where);
    if (!pg)
        goto out;
    int snap = ext_snapshot(pg, path);
    PQfinish(pg);
    if (snap != 0)
        goto out;
    if (pgbank_schema_init(conninfo, err, sizeof err) != 0) {
        pgbank_conninfo_scrub(conninfo, err, sizeof err);
        fprintf(stderr, "fixture: pgbank init in %s: %s\n", where, err);
        goto out;
    }
    printf("the tests run against %s (PGBANK_TEST_DATABASE_URL); pgbank init done there\n",
           where);
    pg = ext_connect(conninfo, where);
    if (!pg)
        goto out;
    rc = ext_distribute(pg, where) == 0 ? 0 : 1;
    PQfinish(pg);
out:
    pgbank_free(conninfo);
    return rc;
}

static int ext_stop(const char *path, const char *url)
{
    char where[1024];
    char *conninfo = ext_conninfo(url, where, sizeof where);
    if (!conninfo)
        return 1;
    int rc;
    if (!is_external_record(path)) {
        fprintf(stderr, "fixture: %s holds no record of a start against %s\n", path, where);
        rc = 1;
    } else {
        rc = ext_cleanup(path, conninfo, where, 0);
    }
    pgbank_free(conninfo);
    return rc;
}

int main(int argc, char **argv)
{
    const char *url = getenv("PGBANK_TEST_DATABASE_URL");
    if (url && *url && argc == 3 && strcmp(argv[1], "start") == 0)
        return ext_start(argv[2], url);
    if (url && *url && argc == 3 && strcmp(argv[1], "stop") == 0)
        return ext_stop(argv[2], url);
    if (argc == 3 && strcmp(argv[1], "start") == 0)
        return start(argv[2]);
    if (argc == 3 && strcmp(argv[1], "stop") == 0)
        return remove_recorded(argv[2], 0);
    fprintf(stderr, "usage: fixture start|stop STATE\n");
    return 2;
}
