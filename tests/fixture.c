/*
 * fixture.c - starts and removes the tests' throwaway PostgreSQL server
 * (CTest fixture "db"): `fixture start DIR` initialises and starts a private
 * server in DIR and creates pgbank's schema; `fixture stop DIR` stops it and
 * deletes DIR.  Stop runs even when tests fail.
 */
#include "pgbank.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    char err[1024], conninfo[1024];
    if (argc != 3) {
        fprintf(stderr, "usage: fixture start|stop DIR\n");
        return 2;
    }
    const char *dir = argv[2];
    if (strcmp(argv[1], "start") == 0) {
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir); /* a stale one from a killed run */
        if (pgbank_server_status(dir) == 1)
            (void)pgbank_server_stop(dir, err, sizeof err);
        if (system(cmd) != 0)
            return 1;
        if (pgbank_server_start(dir, err, sizeof err) != 0) {
            fprintf(stderr, "fixture: %s\n", err);
            return 1;
        }
        if (pgbank_server_conninfo(dir, conninfo, sizeof conninfo) != 0 ||
            pgbank_schema_init(conninfo, err, sizeof err) != 0) {
            fprintf(stderr, "fixture: init: %s\n", err);
            return 1;
        }
        printf("throwaway server running in %s\n", dir);
        return 0;
    }
    if (strcmp(argv[1], "stop") == 0) {
        int rc = pgbank_server_stop(dir, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "fixture: %s\n", err);
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return 1;
        printf("throwaway server in %s stopped and removed\n", dir);
        return rc ? 1 : 0;
    }
    fprintf(stderr, "usage: fixture start|stop DIR\n");
    return 2;
}
