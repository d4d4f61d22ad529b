/*
 * pgbench.c - pgbench on the lab's accounts (see pgbench.h): the two
 * scripts written to a temporary directory, pgbench run as a child (never a
 * shell, src/proc.h), its summary and per-transaction log read back.
 */
#include "pgbench.h"

#include "internal.h"
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

const char *const lab_pgb_names[LAB_PGB_COUNT] = {"one_per_commit", "ten_per_commit_pipeline"};
static const int per_tx[LAB_PGB_COUNT] = {1, 10};

int lab_pgbench_find(lab_pgbench *p)
{
    const char *env = getenv("PGBANK_PGBENCH");
    if (env && *env) {
        snprintf(p->path, sizeof p->path, "%s", env);
        return pgbank__is_executable(p->path);
    }
    static const char *const need[] = {"pgbench", NULL};
    char dir[4000];
    if (!pgbank__pg_bindir(NULL, need, dir, sizeof dir))
        return 0;
    snprintf(p->path, sizeof p->path, "%s/pgbench", dir);
    return 1;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int bad = fputs(text, f) < 0;
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* The atomic strategy's statement, one per commit, and ten per commit in
 * one pipeline (ids not in lock order: concurrent transactions can
 * deadlock, which pgbench counts as failures). */
/* Returns 0, or -1 when the script does not fit in out. */
static int script(int which, const lab_pgb_settings *set, char *out, size_t len)
{
    char dist[96];
    if (set->zipf)
        snprintf(dist, sizeof dist, "random_zipfian(1, %lld, %.1f)", (long long)set->accounts,
                 set->zipf_s);
    else
        snprintf(dist, sizeof dist, "random(1, %lld)", (long long)set->accounts);
    static const char plain[] =
        "UPDATE accounts SET balance = balance - 1 WHERE id = :id%d AND balance >= 1"
        " RETURNING balance;\n";
    /* With the journal: pgbank's own journaled withdrawal (the atomic
     * strategy's statement, src/sql.c), so that both sides write one
     * journal row per withdrawal and chain it to the account's previous
     * one; marked as pgbank's, so the external-change triggers skip it. */
    static const char journaled[] =
        "WITH u AS (UPDATE accounts SET balance = balance - 1,"
        " jseq = (SELECT nextval('pgbank_journal_seq')), jprev = jseq"
        " WHERE id = :id%d AND balance >= 1"
        " AND (SELECT set_config('pgbank.own', 'on', true)) = 'on'"
        " RETURNING id, balance, jseq, jprev)"
        " INSERT INTO pgbank_journal (seq, account, prev, op, amount, balance_after, strategy)"
        " SELECT jseq, id, jprev, 'withdraw', -1, balance, 'pgbench' FROM u"
        " RETURNING balance_after;\n";
    const char *update = set->journal ? journaled : plain;
    size_t o = 0;
    int n = per_tx[which];
    for (int i = 1; i <= n && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, "\\set id%d %s\n", i, dist);
    if (which == LAB_PGB_TEN && o < len)
        o += (size_t)snprintf(out + o, len - o, "\\startpipeline\nBEGIN;\n");
    for (int i = 1; i <= n && o < len; i++)
        o += (size_t)snprintf(out + o, len - o, update, i);
    if (which == LAB_PGB_TEN && o < len)
        o += (size_t)snprintf(out + o, len - o, "COMMIT;\n\\endpipeline\n");
    return o < len ? 0 : -1;
}

static void version(lab_pgbench *p)
{
    char out[256];
    char *const argv[] = {p->path, "--version", NULL};
    p->major = 0;
    if (pgbank__proc_capture(argv, out, sizeof out, 1) == 0) {
        const char *v = strstr(out, ") ");
        p->major = v ? atoi(v + 2) : 0;
    }
}

/* The last non-empty line of a file, for error messages. */
static void last_line(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0])
            snprintf(out, len, "%.*s", (int)(len - 1), line);
    }
    fclose(f);
}

/* pgbench's summary: tps, average latency, transactions, failures. */
static void parse_summary(lab_pgb_result *r, const char *out_path, const char *err_path)
{
    FILE *f = fopen(out_path, "r");
    char line[1024];
    if (f) {
        while (fgets(line, sizeof line, f)) {
            double d;
            long long v;
            if (sscanf(line, "tps = %lf", &d) == 1) {
                r->tps = d;
                r->ran = 1;
            } else if (sscanf(line, "latency average = %lf", &d) == 1) {
                r->latency_avg_ms = d;
            } else if (sscanf(line, "number of transactions actually processed: %lld", &v) ==
                       1) {
                r->transactions = v;
            } else if (sscanf(line, "number of failed transactions: %lld", &v) == 1) {
                r->failed = v;
            } else if (sscanf(line, "number of deadlock failures: %lld", &v) == 1) {
                r->deadlocks = v;
            }
        }
        fclose(f);
    }
    f = fopen(err_path, "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strstr(line, "aborted"))
                r->aborted_clients++;
        fclose(f);
    }
}

/* Percentiles from pgbench's per-transaction log (--log): one line per
 * transaction, "client tx time_us script epoch us", time_us being a word
 * ("failed", "deadlock", ...) for a transaction that failed. */
static void parse_logs(lab_pgb_result *r, const char *dir, const char *prefix)
{
    cli_hist *h = calloc(1, sizeof *h);
    DIR *dp = opendir(dir);
    if (!h || !dp) {
        free(h);
        if (dp)
            closedir(dp);
        return;
    }
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (strncmp(e->d_name, prefix, plen) != 0 || e->d_name[plen] != '.')
            continue;
        char path[4096], line[256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            long client, tx;
            char time[32];
            if (sscanf(line, "%ld %ld %31s", &client, &tx, time) != 3)
                continue;
            char *end;
            long long us = strtoll(time, &end, 10);
            if (*end == '\0' && us >= 0)
                cli_hist_record(h, (uint64_t)us);
        }
        fclose(f);
    }
    closedir(dp);
    r->p50_ms = cli_hist_percentile_ms(h, 50);
    r->p99_ms = cli_hist_percentile_ms(h, 99);
    r->p999_ms = cli_hist_percentile_ms(h, 99.9);
    free(h);
}

static double cpu_us(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec * 1e6 + (double)ru->ru_utime.tv_usec +
           (double)ru->ru_stime.tv_sec * 1e6 + (double)ru->ru_stime.tv_usec;
}

/* The lab's connection string for pgbench's command line: without the
 * password, which goes in PGPASSWORD ("PGPASSWORD=..." in env[0]). */
static char *pgbench_conninfo(const lab_schema *s, char **env, char *err, size_t errlen)
{
    *env = NULL;
    PQconninfoOption *opts = PQconninfoParse(s->conninfo, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "password") == 0) {
            size_t n = strlen(o->val) + sizeof "PGPASSWORD=";
            if ((*env = malloc(n)) != NULL)
                snprintf(*env, n, "PGPASSWORD=%s", o->val);
        }
    }
    PQconninfoFree(opts);
    return pgbank_conninfo_set(s->conninfo, "password", NULL, err, errlen);
}

/* Runs the script `which` for the run's duration (at most a minute more).
 * Fills p->res[which]. */
static void run_one(lab_schema *s, const lab_pgb_settings *set, lab_pgbench *p, int which,
                    const char *conninfo, const char *password_env)
{
    lab_pgb_result *r = &p->res[which];
    const char *name = lab_pgb_names[which];
    char text[8192], path[4200], out_path[4200], err_path[4200], prefix[4200];
    char c_arg[16], t_arg[16], pf_arg[4300];
    r->commits = -1;
    if (script(which, set, text, sizeof text) != 0) {
        snprintf(r->error, sizeof r->error, "the pgbench script is too long");
        return;
    }
    snprintf(path, sizeof path, "%s/%s.sql", p->dir, name);
    snprintf(out_path, sizeof out_path, "%s/%s.out", p->dir, name);
    snprintf(err_path, sizeof err_path, "%s/%s.err", p->dir, name);
    snprintf(prefix, sizeof prefix, "%s/%s", p->dir, name);
    if (write_text(path, text) != 0) {
        snprintf(r->error, sizeof r->error, "could not write %.300s: %s", path,
                 strerror(errno));
        return;
    }
    if (which == LAB_PGB_TEN && p->major && p->major < 14) {
        snprintf(r->error, sizeof r->error, "pgbench %d has no pipeline mode (needs 14 or "
                 "later): skipped", p->major);
        return;
    }
    /* pgbench -T takes whole seconds. */
    r->duration_s = (int)((set->duration_ns + 999999999) / 1000000000);
    snprintf(c_arg, sizeof c_arg, "%d", set->clients);
    snprintf(t_arg, sizeof t_arg, "%d", r->duration_s);
    snprintf(pf_arg, sizeof pf_arg, "--log-prefix=%s", prefix);
    char *argv[20];
    int n = 0;
    argv[n++] = p->path;
    argv[n++] = "-n";
    argv[n++] = "-c";
    argv[n++] = c_arg;
    argv[n++] = "-j";
    argv[n++] = "1";
    argv[n++] = "-T";
    argv[n++] = t_arg;
    argv[n++] = "-M";
    argv[n++] = "prepared";
    argv[n++] = "-f";
    argv[n++] = path;
    argv[n++] = "--log";
    argv[n++] = pf_arg;
    if (p->major >= 15)
        argv[n++] = "--failures-detailed";
    argv[n++] = (char *)conninfo;
    argv[n] = NULL;

    int64_t debited0 = 0, debited1 = 0, neg = 0;
    if (lab_debited(s, set->opening_total, &debited0, &neg) != 0)
        debited0 = -1;
    if (lab_settle(s) != 0) {
        snprintf(r->error, sizeof r->error, "could not vacuum the accounts before pgbench");
        return;
    }
    int64_t commits0 = lab_commits(s);
    fprintf(stderr, "pgbank bench: pgbench %s, %d clients, %d s...\n", name, set->clients,
            r->duration_s);
    int out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const char *env[2] = {password_env, NULL};
    pgbank__proc_opts o;
    pgbank__proc_opts_init(&o);
    o.out_fd = out_fd;
    o.err_fd = err_fd;
    o.keep_pg_env = 1; /* libpq's PG* variables may be what names the database */
    o.env_add = password_env ? env : NULL;
    char err[512] = "";
    pid_t pid = 0;
    int rc = out_fd < 0 || err_fd < 0 ? -1 : pgbank__proc_spawn(argv, &o, &pid, err, sizeof err);
    if (out_fd >= 0)
        close(out_fd);
    if (err_fd >= 0)
        close(err_fd);
    if (rc != 0) {
        snprintf(r->error, sizeof r->error, "could not start pgbench: %.400s",
                 err[0] ? err : strerror(errno));
        return;
    }
    lab_signals_child(pid);
    struct rusage ru;
    int timed_out = 0;
    int status = pgbank__proc_wait(pid, (r->duration_s + 60) * 1000, &timed_out, &ru);
    lab_signals_child(0);
    parse_summary(r, out_path, err_path);
    parse_logs(r, p->dir, name);
    r->commits = lab_commits(s);
    r->commits = commits0 >= 0 && r->commits >= 0 ? r->commits - commits0 : -1;
    if (debited0 >= 0 && lab_debited(s, set->opening_total, &debited1, &neg) == 0)
        r->debited = debited1 - debited0;
    r->ops_per_sec = r->tps * per_tx[which];
    int64_t ops = r->transactions * per_tx[which];
    r->cpu_us_per_op = ops ? cpu_us(&ru) / (double)ops : 0;
    r->rss_mb = (double)ru.ru_maxrss / 1024.0;
    char why[300];
    last_line(err_path, why, sizeof why);
    if (timed_out)
        snprintf(r->error, sizeof r->error, "pgbench did not finish in time and was stopped");
    else if (!r->ran)
        snprintf(r->error, sizeof r->error, "pgbench failed (exit %d)%s%s", status,
                 why[0] ? ": " : "", why);
    else if (r->aborted_clients)
        snprintf(r->error, sizeof r->error, "%lld pgbench clients aborted: %s",
                 (long long)r->aborted_clients, why);
    cli_scrub(s->c, r->error, sizeof r->error);
}

static void remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *e;
        char path[4200];
        while ((e = readdir(dp)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(dp);
    }
    rmdir(dir);
}

void lab_pgbench_run(lab_schema *s, const lab_pgb_settings *set, lab_pgbench *p)
{
    char err[512] = "", *password = NULL;
    char *conninfo = pgbench_conninfo(s, &password, err, sizeof err);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(p->dir, sizeof p->dir, "%s/pgbank-bench.XXXXXX", tmp);
    if (!conninfo || !mkdtemp(p->dir)) {
        for (int i = 0; i < LAB_PGB_COUNT; i++)
            snprintf(p->res[i].error, sizeof p->res[i].error, "%s%s",
                     conninfo ? "could not create a temporary directory: " : err,
                     conninfo ? strerror(errno) : "");
    } else {
        version(p);
        for (int i = 0; i < LAB_PGB_COUNT && !lab_interrupted(); i++)
            run_one(s, set, p, i, conninfo, password);
        remove_dir(p->dir);
    }
    free(conninfo);
    if (password)
        memset(password, 0, strlen(password));
    free(password);
}

/* ------------------------------------------------------------------------
 * Reports.
 * ------------------------------------------------------------------------ */

static double ratio(double a, double b) { return b > 0 ? a / b : NAN; }

static double per_commit(int64_t ops, int64_t commits)
{
    return commits > 0 ? (double)ops / (double)commits : NAN;
}

void lab_pgbench_json(cli_json *j, const lab_pgbench *p, double mine)
{
    cli_json pg, o;
    cli_json_object(j, "pgbench", &pg);
    cli_json_bool(&pg, "found", p->found);
    if (!p->found) {
        cli_json_str(&pg, "message", "pgbench not found");
        cli_json_close(&pg);
        return;
    }
    cli_json_str(&pg, "path", p->path);
    for (int i = 0; i < LAB_PGB_COUNT; i++) {
        const lab_pgb_result *r = &p->res[i];
        double none = NAN;
        cli_json_object(&pg, lab_pgb_names[i], &o);
        cli_json_bool(&o, "ran", r->ran);
        cli_json_num(&o, "ops_per_sec", 1, r->ran ? r->ops_per_sec : none);
        cli_json_num(&o, "tps", 1, r->ran ? r->tps : none);
        cli_json_num(&o, "p50_ms", 3, r->ran ? r->p50_ms : none);
        cli_json_num(&o, "p99_ms", 3, r->ran ? r->p99_ms : none);
        cli_json_num(&o, "p999_ms", 3, r->ran ? r->p999_ms : none);
        cli_json_num(&o, "latency_avg_ms", 3, r->ran ? r->latency_avg_ms : none);
        cli_json_int(&o, "duration_s", r->duration_s);
        cli_json_int(&o, "transactions", r->transactions);
        cli_json_int(&o, "withdrawals_per_tx", per_tx[i]);
        cli_json_int(&o, "failures", r->failed);
        cli_json_int(&o, "deadlocks", r->deadlocks);
        cli_json_int(&o, "aborted_clients", r->aborted_clients);
        cli_json_num(&o, "client_cpu_us_per_op", 3, r->ran ? r->cpu_us_per_op : none);
        cli_json_num(&o, "peak_rss_mb", 1, r->rss_mb);
        if (r->ran && r->commits >= 0)
            cli_json_int(&o, "server_commits", r->commits);
        else
            cli_json_null(&o, "server_commits");
        cli_json_num(&o, "ops_per_commit", 2,
                     r->ran ? per_commit(r->transactions * per_tx[i], r->commits) : none);
        cli_json_int(&o, "debited", r->debited);
        if (r->error[0])
            cli_json_str(&o, "error", r->error);
        cli_json_close(&o);
    }
    cli_json_close(&pg);
    const lab_pgb_result *one = &p->res[LAB_PGB_ONE], *ten = &p->res[LAB_PGB_TEN];
    cli_json_num(j, "ratio_vs_one_per_commit", 2, one->ran ? ratio(mine, one->ops_per_sec) : NAN);
    cli_json_num(j, "ratio_vs_ten_per_commit_pipeline", 2,
                 ten->ran ? ratio(mine, ten->ops_per_sec) : NAN);
}

void lab_pgbench_print(const lab_pgbench *p, int clients, const char *strategy, double mine)
{
    if (!p->found) {
        printf("\npgbench: not found (skipped)\n");
        return;
    }
    printf("\npgbench (%s), same server and accounts, %d clients, -j 1, -M prepared:\n",
           p->path, clients);
    for (int i = 0; i < LAB_PGB_COUNT; i++) {
        const lab_pgb_result *r = &p->res[i];
        if (!r->ran) {
            printf("  %-24s  %s\n", lab_pgb_names[i], r->error);
            continue;
        }
        printf("  %-24s  %10.1f withdrawals/s  p50 %.3f ms  p99 %.3f ms  client CPU %.2f "
               "us/withdrawal  %.2f per commit  failures %lld\n",
               lab_pgb_names[i], r->ops_per_sec, r->p50_ms, r->p99_ms, r->cpu_us_per_op,
               per_commit(r->transactions * per_tx[i], r->commits),
               (long long)(r->failed + r->aborted_clients));
        if (r->error[0])
            printf("  %-24s  (%s)\n", "", r->error);
    }
    for (int i = 0; i < LAB_PGB_COUNT; i++)
        if (p->res[i].ran)
            printf("  pgbank %s / pgbench %s: %.2fx\n", strategy, lab_pgb_names[i],
                   ratio(mine, p->res[i].ops_per_sec));
}
