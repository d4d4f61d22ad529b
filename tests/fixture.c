/*
 * fixture.c - starts and removes the tests' throwaway PostgreSQL server
 * (CTest fixture "db").
 *
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
 * Stop runs even when tests fail.  A start first stops and removes what an
 * earlier, killed run left behind in STATE, under the same rules.
 */
#include "pgbank.h"
#include "rmtree.h"

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

/* Stops and removes what STATE names, if it is what a start made. */
static int remove_recorded(const char *path, int missing_ok)
{
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

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "start") == 0)
        return start(argv[2]);
    if (argc == 3 && strcmp(argv[1], "stop") == 0)
        return remove_recorded(argv[2], 0);
    fprintf(stderr, "usage: fixture start|stop STATE\n");
    return 2;
}
