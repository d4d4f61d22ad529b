/*
 * conn.c - one non-blocking libpq connection as a state machine:
 * connect (PQconnectStartParams / PQconnectPoll), probe the accounts table,
 * prepare the statements, then carry operations in pipeline mode, one Sync
 * per operation step.  Reading follows libpq's non-blocking rules:
 * PQconsumeInput once per readiness, PQgetResult only while !PQisBusy,
 * results drained until libpq has nothing more; write interest is kept while
 * PQflush() returns 1.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void conn_set_deadline(pgbank__conn *c, int ms)
{
    c->deadline_ns = pgbank__now_ns() + (int64_t)ms * 1000000;
}

/* Keeps write interest while libpq still holds unsent bytes. */
static int conn_flush(pgbank__conn *c)
{
    int r = PQflush(c->pg);
    if (r < 0)
        return -1;
    c->want = PGBANK_POLL_IN | (r == 1 ? PGBANK_POLL_OUT : 0);
    return 0;
}

void pgbank__conn_close(pgbank__conn *c)
{
    pgbank_engine *eng = c->eng;
    if (c->told_fd >= 0 && eng->on_socket) {
        /* Before the socket closes: its number may come back at once for
         * the next connection, and the loop must not mistake the two. */
        eng->on_socket(eng->loop_arg, c->told_fd, PGBANK_POLL_REMOVE);
    }
    c->told_fd = -1;
    c->told_want = 0;
    if (c->pg)
        PQfinish(c->pg);
    c->pg = NULL;
    c->fd = -1;
    c->want = 0;
    c->in_cmd = 0;
    c->after_sync = 0;
}

int pgbank__conn_live(const pgbank_engine *eng)
{
    for (int i = 0; i < eng->nconns; i++) {
        pgbank__conn_state s = eng->conns[i].state;
        if (s == CONN_CONNECTING || s == CONN_PROBING || s == CONN_PREPARING ||
            s == CONN_READY)
            return 1;
    }
    return 0;
}

/* No connection of the engine is left: the engine fails what waits for one
 * (eng->error says why) once the work at hand is done. */
static void conn_all_down(pgbank_engine *eng, const char *sqlstate)
{
    eng->all_down = 1;
    pgbank__strlcpy(eng->down_state, sqlstate ? sqlstate : "", sizeof eng->down_state);
}

/* The connection broke (or could not be made): every operation in flight on
 * it ends now, exactly once; the connection reopens after a backoff. */
void pgbank__conn_fail(pgbank__conn *c, const char *sqlstate, const char *msg)
{
    pgbank_engine *eng = c->eng;
    int was_open = c->state == CONN_READY;
    char text[512];
    pgbank__strlcpy(text, msg && *msg ? msg : "connection lost", sizeof text);
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    pgbank__engine_set_error(eng, text);
    pgbank__conn_close(c);
    pgbank__node *n;
    while ((n = c->head) != NULL) {
        c->head = n->next;
        c->inflight--;
        n->next = NULL;
        n->sink->lost(c, n, eng->error);
    }
    c->tail = NULL;
    c->inflight = 0;
    c->exclusive = 0;
    c->state = CONN_BROKEN;
    if (was_open && c->wanted && !eng->closing) {
        /* An established connection died (backend terminated, server
         * restarted): try again at once; queued operations wait for it. */
        c->backoff_ms = 0;
        pgbank__conn_open(c);
        return;
    }
    c->backoff_ms = c->backoff_ms ? (c->backoff_ms * 2 > 2000 ? 2000 : c->backoff_ms * 2) : 50;
    conn_set_deadline(c, c->backoff_ms);
    if (!pgbank__conn_live(eng))
        conn_all_down(eng, sqlstate);
}

static void conn_fail_pq(pgbank__conn *c)
{
    pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_FAILURE, c->pg ? PQerrorMessage(c->pg) : "connection lost");
}

/* Server notices ("terminating connection due to administrator command")
 * go to the echo log when there is one, never to the application's stderr. */
static void conn_notice(void *arg, const char *message)
{
    pgbank_engine *eng = arg;
    if (!eng->opt.echo)
        return;
    char line[512];
    snprintf(line, sizeof line, "notice: %s", message);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    pgbank__scrubber_apply(eng->scrub, line, sizeof line);
    eng->opt.echo(eng->opt.echo_arg, line);
}

void pgbank__conn_open(pgbank__conn *c)
{
    pgbank_engine *eng = c->eng;
    const char *keys[] = {"dbname", "fallback_application_name", NULL};
    const char *vals[] = {eng->conninfo, "pgbank", NULL};
    pgbank__conn_close(c);
    c->setup_failed = 0;
    c->pg = PQconnectStartParams(keys, vals, 1);
    if (!c->pg) {
        pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_UNABLE, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_UNABLE, PQerrorMessage(c->pg));
        return;
    }
    PQsetNoticeProcessor(c->pg, conn_notice, eng);
    c->state = CONN_CONNECTING;
    c->fd = PQsocket(c->pg);
    c->want = PGBANK_POLL_OUT; /* libpq: start as if PGRES_POLLING_WRITING */
    conn_set_deadline(c, eng->opt.connect_timeout_ms);
}

/* Connected: pipeline mode, then ask for the accounts table's shape. */
static void conn_start_probe(pgbank__conn *c)
{
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
        conn_fail_pq(c);
        return;
    }
    c->state = CONN_PROBING;
    c->shards_asked = 0;
    if (pgbank__conn_send(c, SQL_PROBE, NULL) < 0 || pgbank__conn_sync(c) < 0)
        conn_fail_pq(c);
}

static void conn_connect_poll(pgbank__conn *c)
{
    int old_fd = c->fd;
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        c->want = PGBANK_POLL_IN;
        break;
    case PGRES_POLLING_WRITING:
        c->want = PGBANK_POLL_OUT;
        break;
    case PGRES_POLLING_OK:
        c->fd = PQsocket(c->pg);
        conn_start_probe(c);
        return;
    default:
        pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_UNABLE, PQerrorMessage(c->pg));
        return;
    }
    c->fd = PQsocket(c->pg); /* it may change while connecting */
    if (c->fd != old_fd && c->told_fd >= 0 && c->eng->on_socket) {
        c->eng->on_socket(c->eng->loop_arg, c->told_fd, PGBANK_POLL_REMOVE);
        c->told_fd = -1;
        c->told_want = 0;
    }
}

static void setup_error(pgbank__conn *c, const char *state, const char *msg)
{
    if (c->setup_failed)
        return;
    c->setup_failed = 1;
    pgbank__strlcpy(c->setup_state, state, sizeof c->setup_state);
    pgbank__strlcpy(c->setup_msg, msg, sizeof c->setup_msg);
}

static int64_t type_max(const char *type)
{
    if (strcmp(type, "bigint") == 0)
        return INT64_MAX;
    if (strcmp(type, "integer") == 0)
        return INT32_MAX;
    if (strcmp(type, "smallint") == 0)
        return INT16_MAX;
    return 0;
}

/* Citus: the shards' starts, kept by the first connection that reads
 * them (the lanes never change once operations are in them). */
static void shards_result(pgbank__conn *c, PGresult *r)
{
    pgbank_engine *eng = c->eng;
    int n = PQntuples(r);
    if (eng->shards_known)
        return;
    if (n == 0) { /* the accounts are not distributed: lanes as on one server */
        eng->shards_known = 1;
        return;
    }
    int32_t *m = calloc((size_t)n, sizeof *m);
    if (!m) {
        setup_error(c, PGBANK_SQLSTATE_INTERNAL_ERROR, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++)
        m[i] = (int32_t)strtol(PQgetvalue(r, i, 0), NULL, 10);
    eng->shard_min = m;
    eng->nshards = n;
    eng->shards_known = 1;
}

static void setup_result(pgbank__conn *c, PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR) {
        const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        setup_error(c, ss ? ss : PGBANK_SQLSTATE_INTERNAL_ERROR, m ? m : PQresultErrorMessage(r));
        return;
    }
    if (c->state != CONN_PROBING || st != PGRES_TUPLES_OK)
        return;
    pgbank_engine *eng = c->eng;
    char msg[256];
    if (c->shards_asked) {
        shards_result(c, r);
        return;
    }
    if (PQntuples(r) == 0) {
        setup_error(c, PGBANK_SQLSTATE_UNDEFINED_TABLE,
                    "table \"accounts\" does not exist (or lacks id/balance columns): "
                    "run 'pgbank init'");
        return;
    }
    int64_t bmax = type_max(PQgetvalue(r, 0, 0)), imax = type_max(PQgetvalue(r, 0, 1));
    if (!bmax || !imax) {
        snprintf(msg, sizeof msg,
                 "table \"accounts\" has id %s and balance %s: pgbank needs integer or bigint "
                 "columns",
                 PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 0));
        setup_error(c, PGBANK_SQLSTATE_DATATYPE_MISMATCH, msg);
        return;
    }
    eng->balance_max = bmax;
    eng->id_max = imax;
    eng->id_has_default = PQgetvalue(r, 0, 2)[0] == 't';
    if (PQgetvalue(r, 0, 3)[0] == '2') {
        /* Its journal is not the chain this library writes: journaling in
         * the old shape would break the chain, writing none would lose it. */
        setup_error(c, PGBANK_SQLSTATE_UNDEFINED_TABLE,
                    "the database holds an older pgbank schema: run 'pgbank init' to upgrade it");
        return;
    }
    eng->journal = PQgetvalue(r, 0, 3)[0] == '1';
    eng->batch_fn = PQgetvalue(r, 0, 4)[0] == 't';
    eng->keyed_fn = PQgetvalue(r, 0, 5)[0] == 't';
    eng->route_fn = PQgetvalue(r, 0, 6)[0] == 't';
    eng->atomic_one_fn = PQgetvalue(r, 0, 7)[0] == 't';
    eng->probed = 1;
}

static int setup_synced(pgbank__conn *c)
{
    pgbank_engine *eng = c->eng;
    if (c->setup_failed) {
        /* The database answers but cannot serve pgbank (schema missing,
         * permission denied): no point in waiting; say why. */
        pgbank__engine_set_error(eng, c->setup_msg);
        eng->schema_error = 1;
        pgbank__conn_close(c);
        c->state = CONN_BROKEN;
        c->backoff_ms = 2000;
        conn_set_deadline(c, c->backoff_ms);
        if (!pgbank__conn_live(eng))
            conn_all_down(eng, c->setup_state);
        return -2;
    }
    if (c->state == CONN_PROBING && eng->route_fn && !eng->shards_known && !c->shards_asked) {
        c->shards_asked = 1;
        if (pgbank__conn_send(c, SQL_SHARDS, NULL) < 0)
            return -1;
        return pgbank__conn_sync(c);
    }
    if (c->state == CONN_PROBING && !eng->opt.unnamed_statements) {
        c->state = CONN_PREPARING;
        for (int i = 0; i < SQL__COUNT; i++) {
            const pgbank__sql *s = &pgbank__sql_table[i];
            if (i == SQL_PROBE || i == SQL_SHARDS ||
                ((s->needs & SQL_NEEDS_ROUTE) && !eng->route_fn) ||
                ((s->needs & SQL_NEEDS_JOURNAL) && !eng->journal) ||
                ((s->needs & SQL_NEEDS_BATCH) && !eng->batch_fn) ||
                ((s->needs & SQL_NEEDS_KEYED) && !eng->keyed_fn) ||
                ((s->needs & SQL_NEEDS_ATOMIC_ONE) && !eng->atomic_one_fn))
                continue;
            if (!PQsendPrepare(c->pg, s->name, s->text, s->nparams, NULL))
                return -1;
        }
        return pgbank__conn_sync(c);
    }
    c->state = CONN_READY;
    eng->schema_error = 0;
    c->backoff_ms = 0;
    c->deadline_ns = 0;
    return 0;
}

/* A Sync arrived: the work at the head is over; its sink decides what next. */
static int conn_on_sync(pgbank__conn *c)
{
    if (c->state == CONN_PROBING || c->state == CONN_PREPARING)
        return setup_synced(c);
    pgbank__node *n = c->head;
    if (!n)
        return 0;
    c->head = n->next;
    if (!c->head)
        c->tail = NULL;
    c->inflight--;
    n->next = NULL;
    return n->sink->synced(c, n);
}

static void conn_read(pgbank__conn *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_fail_pq(c);
        return;
    }
    for (;;) {
        if (!c->pg || PQisBusy(c->pg))
            break;
        PGresult *r = PQgetResult(c->pg);
        if (!r) {
            if (c->in_cmd) {
                c->in_cmd = 0;
                continue;
            }
            if (c->after_sync) {
                c->after_sync = 0;
                continue;
            }
            break;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            c->after_sync = 1;
            int rc = conn_on_sync(c);
            if (rc == -1)
                conn_fail_pq(c);
            if (rc < 0)
                return;
            continue;
        }
        c->in_cmd = 1;
        c->after_sync = 0;
        if (c->state == CONN_PROBING || c->state == CONN_PREPARING)
            setup_result(c, r);
        else if (c->head)
            c->head->sink->result(c, c->head, r);
        PQclear(r);
    }
    if (c->pg && PQstatus(c->pg) == CONNECTION_BAD)
        conn_fail_pq(c);
}

void pgbank__conn_handle(pgbank__conn *c, int events)
{
    if (c->state == CONN_CONNECTING) {
        conn_connect_poll(c);
        return;
    }
    if (!c->pg)
        return;
    if ((events & PGBANK_POLL_OUT) && conn_flush(c) < 0) {
        conn_fail_pq(c);
        return;
    }
    if (events & PGBANK_POLL_IN)
        conn_read(c);
}

void pgbank__conn_timeout(pgbank__conn *c, int64_t now)
{
    if (!c->deadline_ns || now < c->deadline_ns)
        return;
    switch (c->state) {
    case CONN_CONNECTING:
    case CONN_PROBING:
    case CONN_PREPARING:
        pgbank__conn_fail(c, PGBANK_SQLSTATE_CONNECTION_UNABLE, "timeout expired while connecting");
        break;
    case CONN_BROKEN:
        c->deadline_ns = 0;
        if (c->wanted)
            pgbank__conn_open(c);
        break;
    default:
        break;
    }
}

void pgbank__conn_push(pgbank__conn *c, pgbank__node *n)
{
    n->next = NULL;
    if (c->tail)
        c->tail->next = n;
    else
        c->head = n;
    c->tail = n;
    c->inflight++;
}

void pgbank__conn_take(pgbank__conn *c, pgbank__node *n)
{
    pgbank__node **pp = &c->head, *prev = NULL;
    while (*pp && *pp != n) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = n->next;
    if (c->tail == n)
        c->tail = prev;
    n->next = NULL;
    c->inflight--;
}

/* Echo: one line per statement, with its parameters. */
static void conn_echo(pgbank__conn *c, const pgbank__sql *s, const char *const *values)
{
    char line[1024];
    int len = snprintf(line, sizeof line, "%s", s->text);
    for (int i = 0; i < s->nparams && len > 0 && (size_t)len < sizeof line; i++)
        len += snprintf(line + len, sizeof line - (size_t)len, "%s$%d=%s", i ? ", " : "  -- ",
                        i + 1, values[i] ? values[i] : "NULL");
    c->eng->opt.echo(c->eng->opt.echo_arg, line);
}

int pgbank__conn_send(pgbank__conn *c, pgbank__sql_id id, const char *const *values)
{
    const pgbank__sql *s = &pgbank__sql_table[id];
    if (c->eng->opt.echo)
        conn_echo(c, s, values);
    int ok;
    if (c->eng->opt.unnamed_statements || id == SQL_PROBE || id == SQL_SHARDS)
        ok = PQsendQueryParams(c->pg, s->text, s->nparams, NULL, values, NULL, NULL, 0);
    else
        ok = PQsendQueryPrepared(c->pg, s->name, s->nparams, values, NULL, NULL, 0);
    return ok ? 0 : -1;
}

int pgbank__conn_send_binary(pgbank__conn *c, pgbank__sql_id id, const char *const *values,
                             const int *lengths, const char *const *shown)
{
    const pgbank__sql *s = &pgbank__sql_table[id];
    int formats[8];
    for (int i = 0; i < s->nparams && i < 8; i++)
        formats[i] = 1;
    if (c->eng->opt.echo)
        conn_echo(c, s, shown);
    int ok;
    if (c->eng->opt.unnamed_statements)
        ok = PQsendQueryParams(c->pg, s->text, s->nparams, NULL, values, lengths, formats, 0);
    else
        ok = PQsendQueryPrepared(c->pg, s->name, s->nparams, values, lengths, formats, 0);
    return ok ? 0 : -1;
}

int pgbank__conn_sync(pgbank__conn *c)
{
    if (PQpipelineSync(c->pg) != 1)
        return -1;
    return conn_flush(c);
}
