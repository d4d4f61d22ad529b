/*
 * output.c - everything the tool says: error lines on stderr (always
 * scrubbed of the connection's password), JSON objects on stdout, and the
 * wording of failed operations.
 */
#include "cli.h"
#include "sqlstate.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

void cli_scrub(const cli *c, char *msg, size_t size)
{
    /* With no connection string this still masks $PGPASSWORD. */
    pgbank_conninfo_scrub(c->scrub ? c->scrub : "", msg, size);
}

int cli_error(const cli *c, int code, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cli_scrub(c, msg, sizeof msg);
    fprintf(stderr, "pgbank: %s\n", msg);
    if (code > 0)
        cli_json_failure(c, code == CLI_EXIT_USAGE ? "invalid input"
                                                   : "database error",
                         "", msg);
    return code;
}

/* ------------------------------------------------------------------------
 * JSON.
 * ------------------------------------------------------------------------ */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

void cli_json_begin(cli_json *j)
{
    j->f = stdout;
    j->fields = 0;
    j->array = 0;
    fputc('{', j->f);
}

/* The separator, and the key unless j is an array (key NULL). */
static void json_key(cli_json *j, const char *key)
{
    if (j->fields++)
        fputc(',', j->f);
    if (key) {
        json_string(j->f, key);
        fputc(':', j->f);
    }
}

void cli_json_str(cli_json *j, const char *key, const char *val)
{
    json_key(j, key);
    json_string(j->f, val ? val : "");
}

void cli_json_int(cli_json *j, const char *key, int64_t val)
{
    json_key(j, key);
    fprintf(j->f, "%lld", (long long)val);
}

void cli_json_bool(cli_json *j, const char *key, int val)
{
    json_key(j, key);
    fputs(val ? "true" : "false", j->f);
}

void cli_json_num(cli_json *j, const char *key, int decimals, double val)
{
    json_key(j, key);
    if (isfinite(val))
        fprintf(j->f, "%.*f", decimals, val);
    else
        fputs("null", j->f);
}

void cli_json_null(cli_json *j, const char *key)
{
    json_key(j, key);
    fputs("null", j->f);
}

void cli_json_key(cli_json *j, const char *key)
{
    json_key(j, key);
}

static void json_open(cli_json *j, const char *key, cli_json *child, int array)
{
    json_key(j, key);
    child->f = j->f;
    child->fields = 0;
    child->array = array;
    fputc(array ? '[' : '{', j->f);
}

void cli_json_object(cli_json *j, const char *key, cli_json *child)
{
    json_open(j, key, child, 0);
}

void cli_json_array(cli_json *j, const char *key, cli_json *child)
{
    json_open(j, key, child, 1);
}

void cli_json_close(cli_json *j)
{
    fputc(j->array ? ']' : '}', j->f);
}

void cli_json_end(cli_json *j)
{
    fputs("}\n", j->f);
    fflush(j->f);
}

void cli_json_failure(const cli *c, const char *status, const char *sqlstate,
                      const char *message)
{
    if (!c->json)
        return;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", message ? message : "");
    cli_scrub(c, msg, sizeof msg);
    cli_json j;
    cli_json_begin(&j);
    cli_json_str(&j, "status", status);
    if (sqlstate)
        cli_json_str(&j, "sqlstate", sqlstate);
    cli_json_str(&j, "message", msg);
    cli_json_end(&j);
}

/* ------------------------------------------------------------------------
 * Failed operations.
 * ------------------------------------------------------------------------ */

int cli_exit_code(pgbank_status s)
{
    switch (s) {
    case PGBANK_OK: return CLI_EXIT_OK;
    case PGBANK_INSUFFICIENT_FUNDS:
    case PGBANK_NO_SUCH_ACCOUNT:
    case PGBANK_CONFLICT: return CLI_EXIT_REFUSED;
    case PGBANK_INVALID_AMOUNT:
    case PGBANK_INVALID_INPUT: return CLI_EXIT_USAGE;
    default: return CLI_EXIT_FAILURE;
    }
}

static int is_connection_error(const pgbank_result *r)
{
    return pgbank__sqlstate_connection(r->sqlstate);
}

/* A table or function of pgbank's is missing: 42P01/42883 about one of
 * its names.  (42883 also says "operator does not exist", which no init
 * cures.) */
static int is_missing_schema(const pgbank_result *r)
{
    return pgbank__sqlstate_missing_object(r->sqlstate) &&
           strstr(r->message, "does not exist") && !strstr(r->message, "operator ") &&
           (strstr(r->message, "accounts") || strstr(r->message, "pgbank_"));
}

/* The one-line explanation of a failed result, without "pgbank: ". */
static void describe_failure(const pgbank_result *r, char *out, size_t len)
{
    const char *name = pgbank_status_name(r->status);
    const char *sep = r->message[0] ? ": " : "";
    if (r->status == PGBANK_DB_ERROR && is_connection_error(r))
        snprintf(out, len, "could not connect to the database: %s",
                 r->message);
    else if (r->status == PGBANK_DB_ERROR && is_missing_schema(r) &&
             !strstr(r->message, "pgbank init"))
        snprintf(out, len, "database error: %s (SQLSTATE %s); run "
                 "'pgbank init' to create the schema", r->message,
                 r->sqlstate);
    else if (r->status == PGBANK_DB_ERROR &&
             pgbank__sqlstate_is(r->sqlstate, PGBANK_SQLSTATE_FEATURE_NOT_SUPPORTED))
        snprintf(out, len, "database error: %s (SQLSTATE %s): this database does not "
                 "support what the strategy sends (a distributed one, say); use the "
                 "atomic strategy, or batch (docs/SCALING.md)", r->message,
                 r->sqlstate);
    else if (r->status == PGBANK_DB_ERROR && r->sqlstate[0])
        snprintf(out, len, "database error: %s (SQLSTATE %s)", r->message,
                 r->sqlstate);
    else if (r->status == PGBANK_UNKNOWN_OUTCOME)
        snprintf(out, len, "unknown outcome%s%s; the operation may or may "
                 "not have been applied: check the balance before retrying",
                 sep, r->message);
    else
        snprintf(out, len, "%s%s%s", name, sep, r->message);
}

/* A named prepared statement that already exists (42P05) or is unknown
 * (26000) on the server: the mark of a pooler handing each transaction
 * another server connection. */
static int is_pooler_symptom(const pgbank_result *r)
{
    return r->status == PGBANK_DB_ERROR &&
           (pgbank__sqlstate_is(r->sqlstate, PGBANK_SQLSTATE_DUPLICATE_PREPARED_STATEMENT) ||
            pgbank__sqlstate_is(r->sqlstate, PGBANK_SQLSTATE_INVALID_SQL_STATEMENT_NAME));
}

int cli_report_failure(const cli *c, const pgbank_op *op)
{
    const pgbank_result *r = &op->result;
    char msg[1024];
    describe_failure(r, msg, sizeof msg);
    if (is_pooler_symptom(r) && !c->unnamed_statements)
        snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "; behind "
                 "PgBouncer in transaction pooling mode, pass "
                 "--unnamed-statements");
    cli_error(c, 0, "%s", msg);
    cli_json_failure(c, pgbank_status_name(r->status),
                     r->status == PGBANK_DB_ERROR ? r->sqlstate : NULL,
                     r->message[0] ? r->message : msg);
    return cli_exit_code(r->status);
}
