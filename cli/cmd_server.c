/*
 * cmd_server.c - `pgbank server start|stop|status|url`: the private
 * PostgreSQL server that commands use when no database is named.
 */
#include "cli.h"

#include <string.h>

/* Prints a server state: "<state> in DIR" or a JSON object. */
static void print_state(const cli *c, const char *state, const char *dir,
                        const char *text)
{
    if (c->json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "status", "ok");
        cli_json_str(&j, "server", state);
        cli_json_str(&j, "data_dir", dir);
        cli_json_end(&j);
    } else {
        printf("%s\n", text);
    }
}

/* " --data-dir 'DIR'" when the user named one, for the hints we print. */
static void data_dir_hint(const cli *c, char *buf, size_t len)
{
    if (c->data_dir)
        snprintf(buf, len, " --data-dir '%s'", c->data_dir);
    else
        buf[0] = '\0';
}

static int server_start(cli *c, const char *dir)
{
    char err[1024], text[CLI_PATH_MAX + 256], hint[CLI_PATH_MAX + 32];
    int was_running = pgbank_server_status(dir) == 1;
    if (pgbank_server_start(dir, err, sizeof err) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "could not start the private "
                         "server in %s: %s", dir, err);
    data_dir_hint(c, hint, sizeof hint);
    snprintf(text, sizeof text, "%s the private server in %s (stop it with "
             "'pgbank server stop%s')", was_running ? "reusing" : "started",
             dir, hint);
    print_state(c, "running", dir, text);
    return CLI_EXIT_OK;
}

static int server_stop(cli *c, const char *dir)
{
    char err[1024], text[CLI_PATH_MAX + 64];
    int status = pgbank_server_status(dir);
    if (pgbank_server_stop(dir, err, sizeof err) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "could not stop the private "
                         "server in %s: %s", dir, err);
    snprintf(text, sizeof text, status == 1 ? "stopped the private server "
             "in %s" : "the private server in %s was not running", dir);
    print_state(c, "stopped", dir, text);
    return CLI_EXIT_OK;
}

/* Exit 0 when running, 1 when stopped or not initialised. */
static int server_status(cli *c, const char *dir)
{
    char text[CLI_PATH_MAX + 64];
    int status = pgbank_server_status(dir);
    const char *state = status == 1   ? "running"
                        : status == 0 ? "stopped"
                        : status == PGBANK_ENOTFOUND ? "not initialised"
                                                     : NULL;
    if (!state)
        return cli_error(c, CLI_EXIT_FAILURE, "could not read the state of "
                         "the private server in %s: %s", dir,
                         pgbank_strerror(status));
    snprintf(text, sizeof text, "%s (data dir %s)", state, dir);
    print_state(c, state, dir, text);
    return status == 1 ? CLI_EXIT_OK : CLI_EXIT_REFUSED;
}

static int server_url(cli *c, const char *dir)
{
    char url[2048];
    if (pgbank_server_url(dir, url, sizeof url) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "no private server in %s (start "
                         "one with 'pgbank server start')", dir);
    if (c->json) {
        cli_json j;
        cli_json_begin(&j);
        cli_json_str(&j, "status", "ok");
        cli_json_str(&j, "url", url);
        cli_json_str(&j, "data_dir", dir);
        cli_json_end(&j);
    } else {
        printf("%s\n", url);
    }
    return CLI_EXIT_OK;
}

static int run_server(cli *c, int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(cli *c, const char *dir);
    } actions[] = {{"start", server_start}, {"stop", server_stop},
                   {"status", server_status}, {"url", server_url}};
    char *pos[1], dir[CLI_PATH_MAX];
    int npos, rc = cli_parse(c, argc, argv, NULL, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos == 0)
        return cli_usage_error(c, "missing action (start, stop, status, url)");
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        if (strcmp(pos[0], actions[i].name) != 0)
            continue;
        if ((rc = cli_parsed(c)) != 0)
            return rc;
        if ((rc = cli_data_dir(c, dir, sizeof dir)) != 0)
            return rc;
        return actions[i].fn(c, dir);
    }
    return cli_usage_error(c, "unknown action '%s' (start, stop, status, url)",
                           pos[0]);
}

const cli_command cli_cmd_server = {
    "server", "start, stop or inspect the private PostgreSQL server",
    "Usage: pgbank server start|stop|status|url [--data-dir DIR]\n"
    "\n"
    "The private server is a PostgreSQL instance of pgbank's own (initdb +\n"
    "pg_ctl, unix socket) used when no database is named (no --db, no\n"
    "DATABASE_URL, no PGHOST/PGHOSTADDR/PGDATABASE/PGSERVICE).  Commands\n"
    "start it on demand and create its schema; it keeps running until\n"
    "stopped.\n"
    "\n"
    "Actions:\n"
    "  start    start it (initialising DIR on first use), or reuse it\n"
    "  stop     stop it (fast shutdown); fine when it is not running\n"
    "  status   print running, stopped or not initialised; exit 0 when\n"
    "           running, 1 otherwise\n"
    "  url      print its postgresql:// URL (for psql and other tools)\n"
    "\n"
    "Options:\n"
    "  --data-dir DIR   its directory (default $PGBANK_DATA_DIR, else\n"
    "                   $XDG_STATE_HOME/pgbank, else ~/.local/state/pgbank)\n"
    "\n"
    "DIR must be missing (pgbank creates it, mode 0700) or empty or pgbank's\n"
    "(holding pgbank.lock or pgdata/PG_VERSION); never a symbolic link; owned\n"
    "by you, or as root by the server account; with no group or other\n"
    "permission bits.  Anything else is refused (exit 3) and left unchanged.\n"
    "\n"
    "As root the server runs as the account postgres (or $PGBANK_SERVER_USER),\n"
    "which owns DIR and writes every file in it.  Where that account cannot\n"
    "pass a directory above DIR (/root is 0700), pgbank adds an ACL entry for\n"
    "it alone (u:postgres:--x) and says so; nobody else gains access.  The\n"
    "server listens only on a unix socket in DIR; pg_hba.conf, rewritten at\n"
    "every start, admits that socket only.  When the installed PostgreSQL\n"
    "changed under a running server (a package update), the next command\n"
    "restarts it once and says so.  $PGBANK_PG_BINDIR names the directory of\n"
    "initdb, pg_ctl and postgres to use.\n"
    "\n"
    "Example:\n"
    "  pgbank server start && psql \"$(pgbank server url)\"\n",
    run_server,
};
