/*
 * database.c - which database a command talks to, and its engine.
 *
 * Resolution, in order:
 *   1. --db URL, else $DATABASE_URL (empty counts as unset): normalised
 *      (postgresql+asyncpg:// becomes postgresql://); never given a schema
 *      implicitly.
 *   2. any of PGHOST, PGHOSTADDR, PGDATABASE, PGSERVICE set: conninfo "",
 *      libpq's own variables and service files.
 *   3. the private server in --data-dir or the default directory, started
 *      on demand.  Its schema is created when missing: by cli_db_execute()
 *      when an operation finds no accounts table (one failed connection,
 *      once), or up front by cli_db_resolve(auto_init) for commands whose
 *      run time dwarfs an init (~15 ms).
 * Every message derived from the connection string goes through the
 * password scrub (c->scrub).
 */
#include "cli.h"
#include "sqlstate.h"

#include <stdlib.h>
#include <string.h>

/* A command that forgot cli_parsed() goes no further than this. */
static int parse_only_guard(const cli *c)
{
    return cli_error(c, CLI_EXIT_FAILURE, "PGBANK_PARSE_ONLY is set, yet 'pgbank %s' went "
                     "past its parsing without stopping (a bug)", c->command);
}

int cli_data_dir(const cli *c, char *buf, size_t len)
{
    if (c->parse_only)
        return parse_only_guard(c);
    if (c->data_dir) {
        if (strlen(c->data_dir) >= len)
            return cli_error(c, CLI_EXIT_USAGE, "--data-dir is too long");
        memcpy(buf, c->data_dir, strlen(c->data_dir) + 1);
        return 0;
    }
    if (pgbank_server_default_dir(buf, len) != 0)
        return cli_error(c, CLI_EXIT_USAGE, "the default data directory "
                         "is too long; pass --data-dir DIR");
    return 0;
}

static int env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

static int resolve_url(cli *c, cli_db *db, const char *url,
                       const char *source)
{
    char err[512];
    c->scrub = url; /* until the normalised copy exists */
    db->conninfo = pgbank_conninfo_normalize(url, err, sizeof err);
    if (!db->conninfo)
        return cli_error(c, CLI_EXIT_USAGE, "%s: %s", source, err);
    c->scrub = db->conninfo;
    pgbank_conninfo_redact(db->conninfo, db->where, sizeof db->where);
    return 0;
}

static int resolve_libpq_env(cli *c, cli_db *db)
{
    db->conninfo = strdup("");
    if (!db->conninfo)
        return cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    c->scrub = db->conninfo;
    snprintf(db->where, sizeof db->where,
             "the database named by libpq's PG* environment variables");
    return 0;
}

/* The schema of the private server, created when missing: the user never
 * has to run `pgbank init` against their own private server. */
static int init_private_schema(cli *c, cli_db *db)
{
    char err[1024];
    if (pgbank_schema_init(db->conninfo, err, sizeof err) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "could not create the schema "
                         "in %s: %s", db->where, err);
    return 0;
}

static int resolve_private_server(cli *c, cli_db *db, int auto_init)
{
    char err[1024], conninfo[2048];
    int rc = cli_data_dir(c, db->data_dir, sizeof db->data_dir);
    if (rc)
        return rc;
    db->embedded = 1;
    snprintf(db->where, sizeof db->where, "the private server in %s",
             db->data_dir);
    if (pgbank_server_start(db->data_dir, err, sizeof err) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "could not start the private "
                         "server in %s: %s", db->data_dir, err);
    if (pgbank_server_conninfo(db->data_dir, conninfo, sizeof conninfo) != 0)
        return cli_error(c, CLI_EXIT_FAILURE, "no connection string for the "
                         "private server in %s", db->data_dir);
    db->conninfo = strdup(conninfo);
    if (!db->conninfo)
        return cli_error(c, CLI_EXIT_FAILURE, "out of memory");
    c->scrub = db->conninfo;
    return auto_init ? init_private_schema(c, db) : 0;
}

int cli_db_resolve(cli *c, cli_db *db, int auto_init)
{
    memset(db, 0, sizeof *db);
    if (c->parse_only)
        return parse_only_guard(c);
    if (c->db)
        return resolve_url(c, db, c->db, "--db");
    const char *url = getenv("DATABASE_URL");
    if (url && *url)
        return resolve_url(c, db, url, "DATABASE_URL");
    if (env_set("PGHOST") || env_set("PGHOSTADDR") || env_set("PGDATABASE") ||
        env_set("PGSERVICE"))
        return resolve_libpq_env(c, db);
    return resolve_private_server(c, db, auto_init);
}

/* --echo: the library masks passwords already; scrub anyway. */
static void echo_line(void *arg, const char *line)
{
    const cli *c = arg;
    size_t size = strlen(line) * 4 + 64; /* "****" may outgrow a password */
    char *buf = malloc(size);
    if (!buf)
        return;
    memcpy(buf, line, strlen(line) + 1);
    cli_scrub(c, buf, size);
    fprintf(stderr, "%s\n", buf);
    free(buf);
}

void cli_engine_options(cli *c, const cli_db *db, pgbank_options *opt)
{
    cli_engine_options_for(c, db->conninfo, opt);
}

void cli_engine_options_for(cli *c, const char *conninfo, pgbank_options *opt)
{
    pgbank_options_init(opt);
    opt->conninfo = conninfo;
    /* PgBouncer in transaction pooling hands each transaction whichever
     * server connection is free: a statement prepared on one is unknown on
     * the next, so only unnamed statements work there. */
    opt->unnamed_statements = c->unnamed_statements;
    if (c->echo) {
        opt->echo = echo_line;
        opt->echo_arg = c;
    }
}

int cli_engine_new(cli *c, const pgbank_options *opt, pgbank_engine **out)
{
    char err[1024] = "";
    int rc = pgbank_engine_new(out, opt, err, sizeof err);
    if (rc == PGBANK_ECONNINFO)
        return cli_error(c, CLI_EXIT_USAGE, "invalid connection string: %s",
                         err);
    if (rc)
        return cli_error(c, CLI_EXIT_FAILURE, "could not create the engine: "
                         "%s", err[0] ? err : pgbank_strerror(rc));
    return 0;
}

int cli_db_open_engine(cli *c, cli_db *db, int connections)
{
    pgbank_options opt;
    cli_engine_options(c, db, &opt);
    opt.connections = connections;
    db->connections = connections;
    return cli_engine_new(c, &opt, &db->eng);
}

int cli_db_open(cli *c, cli_db *db)
{
    int rc = cli_db_resolve(c, db, 0);
    return rc ? rc : cli_db_open_engine(c, db, 1);
}

/* The engine reports a missing accounts table as SQLSTATE 42P01 when it
 * sets up a connection, before the operation is sent. */
static int schema_missing(const pgbank_op *op)
{
    return op->result.status == PGBANK_DB_ERROR &&
           pgbank__sqlstate_is(op->result.sqlstate, PGBANK_SQLSTATE_UNDEFINED_TABLE);
}

int cli_db_execute(cli *c, cli_db *db, pgbank_op *op)
{
    int rc = pgbank_execute(db->eng, op);
    /* Nothing ran, so on the private server create the schema and run the
     * operation again, on a fresh engine (the old one backs off) - unless
     * other operations of the caller are still in flight on the old one. */
    if (rc == 0 && db->embedded && schema_missing(op) &&
        pgbank_engine_pending(db->eng) == 0) {
        pgbank_engine_free(db->eng);
        db->eng = NULL;
        if ((rc = init_private_schema(c, db)) != 0 ||
            (rc = cli_db_open_engine(c, db, db->connections)) != 0)
            return rc;
        memset(&op->result, 0, sizeof op->result);
        rc = pgbank_execute(db->eng, op);
    }
    if (rc)
        return cli_error(c, CLI_EXIT_FAILURE, "could not run the operation: "
                         "%s", pgbank_strerror(rc));
    return 0;
}

void cli_db_close(cli *c, cli_db *db)
{
    pgbank_engine_free(db->eng);
    db->eng = NULL;
    free(db->conninfo);
    db->conninfo = NULL;
    c->scrub = NULL;
}
