/*
 * test_conninfo.c - connection strings: every accepted form normalised for
 * libpq, malformed ones rejected with a reason, and the password kept out
 * of every output (normalize's errors, redact, scrub), in every form it can
 * take, including strings mangled right inside the password; and strings
 * edited (a parameter set or removed, a schema added to the options).
 */
#include "testlib.h"

#include <libpq-fe.h>

#define PW "S3cretPw0rd"

/* The password's halves: a leak of either counts, since a malformed string
 * can split it. */
static int leaks(const char *text)
{
    return text && (strstr(text, "S3cret") || strstr(text, "Pw0rd") ||
                    strstr(text, "S3cr") || strstr(text, "w0rd"));
}

#define CHECK_NO_LEAK(text)                                                   \
    do {                                                                      \
        const char *t_ = (text);                                              \
        if (leaks(t_)) {                                                      \
            fprintf(stderr, "%s:%d: password leaked: \"%s\"\n", __FILE__,     \
                    __LINE__, t_);                                            \
            t_failures++;                                                     \
        }                                                                     \
    } while (0)

static void check_norm(const char *in, const char *want)
{
    char err[256] = "untouched";
    char *out = pgbank_conninfo_normalize(in, err, sizeof err);
    CHECK_STR(out, want);
    if (!out)
        fprintf(stderr, "  (for %s: %s)\n", in ? in : "NULL", err);
    free(out);
}

static void accepted_forms_are_normalised(void)
{
    check_norm(NULL, "");
    check_norm("", "");
    check_norm("host=localhost dbname=bank", "host=localhost dbname=bank");
    check_norm("  host = localhost  password='a b' ", "  host = localhost  password='a b' ");
    check_norm("postgresql://u@localhost/bank", "postgresql://u@localhost/bank");
    check_norm("postgres://u@localhost:5433/bank?sslmode=disable",
               "postgres://u@localhost:5433/bank?sslmode=disable");
    check_norm("postgresql:///bank", "postgresql:///bank");
    /* The seed's SQLAlchemy form and other drivers: "+driver" dropped. */
    check_norm("postgresql+asyncpg://user:password@localhost/bank",
               "postgresql://user:password@localhost/bank");
    check_norm("postgresql+asyncpg://user:" PW "@db.example.com:6432/bank",
               "postgresql://user:" PW "@db.example.com:6432/bank");
    check_norm("postgres+psycopg2://u@h/bank", "postgresql://u@h/bank");
    check_norm("  POSTGRESQL://u@h/bank  ", "postgresql://u@h/bank");
    /* asyncpg spells sslmode "ssl". */
    check_norm("postgresql+asyncpg://u@h/bank?ssl=require",
               "postgresql://u@h/bank?sslmode=require");
    check_norm("postgresql+asyncpg://u@h/bank?ssl=true&application_name=x",
               "postgresql://u@h/bank?sslmode=require&application_name=x");
    check_norm("postgresql+asyncpg://u@h/bank?ssl=false",
               "postgresql://u@h/bank?sslmode=disable");
    /* A socket directory as host, percent-encoded. */
    check_norm("postgresql://pgbank@%2Ftmp%2Fa%20b:5432/pgbank",
               "postgresql://pgbank@%2Ftmp%2Fa%20b:5432/pgbank");

    /* What libpq then makes of the seed's form. */
    char *n = pgbank_conninfo_normalize(
        "postgresql+asyncpg://user:" PW "@localhost/bank", NULL, 0);
    PQconninfoOption *opts = n ? PQconninfoParse(n, NULL) : NULL;
    CHECK(opts != NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (strcmp(o->keyword, "user") == 0)
            CHECK_STR(o->val, "user");
        if (strcmp(o->keyword, "password") == 0)
            CHECK_STR(o->val, PW);
        if (strcmp(o->keyword, "host") == 0)
            CHECK_STR(o->val, "localhost");
        if (strcmp(o->keyword, "dbname") == 0)
            CHECK_STR(o->val, "bank");
    }
    PQconninfoFree(opts);
    free(n);
}

/* Rejected, with a message that says why (want) and hides the password. */
static void check_rejected(const char *in, const char *want)
{
    char err[512] = "";
    char *out = pgbank_conninfo_normalize(in, err, sizeof err);
    CHECK(out == NULL);
    CHECK(strncmp(err, "invalid connection string", 25) == 0);
    if (want && !strstr(err, want)) {
        fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__,
                __LINE__, err, want);
        t_failures++;
    }
    CHECK_NO_LEAK(err);
    free(out);
}

static void malformed_strings_are_rejected_without_the_password(void)
{
    check_rejected("mysql://u:" PW "@h/bank", "unsupported scheme \"mysql://\"");
    check_rejected("http://u:" PW "@h/bank", "\"http://\"");
    check_rejected("host=h nosuchoption=1 password=" PW, "\"nosuchoption\"");
    check_rejected("postgresql://u:" PW "@h/bank?nosuch=1", "\"nosuch\"");
    check_rejected("host=h dbname", "\"dbname\"");
    /* libpq itself would quote the password (or part of it) here. */
    check_rejected("postgresql://u:" PW "%zz@h/bank", "password");
    check_rejected("postgresql://u:" PW "@[::1/bank", NULL);
    check_rejected("postgresql://h/bank?password=" PW "%00", NULL);
    check_rejected("postgresql://h/bank?password=S3cret&Pw0rd&sslmode=disable", NULL);
    check_rejected("host=h password=S3cret Pw0rd dbname=bank", NULL);
    check_rejected("host=h password=S3cret Pw0rd=x", NULL);
    check_rejected("host=h password='" PW, "password='...'");
    check_rejected("password=" PW " host='h", "unterminated");
    /* Unencoded '@' or '/' in the password: libpq would take part of it
     * for the host or the port. */
    check_rejected("postgresql+asyncpg://user:S3cret@Pw0rd@localhost/bank", "%40");
    check_rejected("postgresql://user:S3cret/Pw0rd@localhost/bank", "%2F");
}

static void check_redact(const char *in, const char *want)
{
    char out[512];
    pgbank_conninfo_redact(in, out, sizeof out);
    CHECK_STR(out, want);
    CHECK_NO_LEAK(out);
}

static void redact_hides_the_password_in_every_form(void)
{
    check_redact(NULL, "");
    check_redact("", "");
    check_redact("host=h dbname=bank", "host=h dbname=bank");
    check_redact("postgresql://u@h:5432/bank", "postgresql://u@h:5432/bank");
    check_redact("postgresql://user:" PW "@localhost/bank",
                 "postgresql://user:****@localhost/bank");
    check_redact("postgresql+asyncpg://user:" PW "@localhost/bank",
                 "postgresql+asyncpg://user:****@localhost/bank");
    check_redact("postgresql://user:S3cret%40Pw0rd@h:5432/bank",
                 "postgresql://user:****@h:5432/bank");
    check_redact("postgresql://user:S3cret@Pw0rd@h/bank", "postgresql://user:****@h/bank");
    check_redact("host=h password=" PW " dbname=bank", "host=h password=**** dbname=bank");
    check_redact("host=h password = '" PW " x\\'y' dbname=bank",
                 "host=h password = **** dbname=bank");
    check_redact("host=h PASSWORD=" PW, "host=h PASSWORD=****");
    check_redact("host=h sslpassword=" PW " port=5", "host=h sslpassword=**** port=5");
    check_redact("host=h password=S3cret Pw0rd dbname=bank",
                 "host=h password=**** dbname=bank");
    check_redact("postgresql://h/bank?password=" PW "&sslmode=disable",
                 "postgresql://h/bank?password=****&sslmode=disable");
    check_redact("postgresql://h/bank?sslmode=disable&password=S3cret%26Pw0rd",
                 "postgresql://h/bank?sslmode=disable&password=****");
    check_redact("postgresql://u:" PW "@h/bank?password=" PW,
                 "postgresql://u:****@h/bank?password=****");

    /* Truncated output stays terminated and shows nothing secret. */
    char small[20];
    memset(small, 'x', sizeof small);
    pgbank_conninfo_redact("postgresql://user:" PW "@localhost/bank", small, sizeof small);
    CHECK(strlen(small) == sizeof small - 1);
    CHECK_NO_LEAK(small);
    pgbank_conninfo_redact("host=h", small, 0); /* harmless */
}

static void check_scrub(const char *conninfo, const char *msg, const char *want)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", msg);
    pgbank_conninfo_scrub(conninfo, buf, sizeof buf);
    CHECK_STR(buf, want);
    CHECK_NO_LEAK(buf);
}

static void scrub_hides_the_password_in_messages(void)
{
    unsetenv("PGPASSWORD");
    check_scrub("postgresql://u:" PW "@h/bank", "auth failed for " PW " (" PW ")",
                "auth failed for **** (****)");
    check_scrub("postgresql+asyncpg://u:" PW "@h/bank", "x" PW "y", "x****y");
    check_scrub("host=h password=" PW, "bad: " PW, "bad: ****");
    check_scrub("host=h password='S3cret Pw0rd'", "bad: S3cret Pw0rd.", "bad: ****.");
    check_scrub("postgresql://h/bank?password=" PW, "[" PW "]", "[****]");
    /* Percent-encoded in the string: both forms are hidden. */
    check_scrub("postgresql://u:S3cret%40Pw0rd@h/bank",
                "raw S3cret@Pw0rd, quoted S3cret%40Pw0rd, lower S3cret%40Pw0rd",
                "raw ****, quoted ****, lower ****");
    check_scrub("host=h password=S3cret@Pw0rd", "uri u:S3cret%40Pw0rd@h", "uri u:****@h");
    /* A malformed string: libpq cannot say what the password is. */
    check_scrub("postgresql://u:" PW "%zz@h/bank", "token \"" PW "%zz\"", "token \"****\"");
    /* PGPASSWORD, plain and percent-encoded. */
    setenv("PGPASSWORD", "S3cret/Pw0rd", 1);
    check_scrub("host=h", "pw S3cret/Pw0rd or S3cret%2FPw0rd", "pw **** or ****");
    check_scrub(NULL, "pw S3cret/Pw0rd", "pw ****");
    unsetenv("PGPASSWORD");
    /* Empty passwords are ignored; nothing else is touched. */
    check_scrub("postgresql://u:@h/bank", "a :@ b", "a :@ b");
    check_scrub("host=h password=''", "a '' b", "a '' b");
    check_scrub("host=h password=" PW, "", "");

    /* Growth ("pw" -> "****") stays within msgsize. */
    char small[8] = "ab pw c";
    pgbank_conninfo_scrub("password=pw", small, sizeof small);
    CHECK_STR(small, "ab ****");
    char tiny[1] = "";
    pgbank_conninfo_scrub("password=pw", tiny, sizeof tiny);
    pgbank_conninfo_scrub("password=pw", NULL, 10); /* harmless */
}

/* Every character that breaks strings, put at every place inside the
 * password of every form: whatever comes out shows no part of it. */
static void mangled_passwords_never_leak(void)
{
    static const char *const forms[] = {
        "postgresql://user:%s@localhost:5432/bank?sslmode=disable",
        "postgresql+asyncpg://user:%s@localhost/bank",
        "postgresql://localhost/bank?password=%s&sslmode=disable",
        "postgresql://localhost/bank?sslmode=disable&password=%s",
        "host=localhost password=%s dbname=bank",
        "host=localhost password='%s' dbname=bank",
        "host=localhost password=%s",
    };
    static const char inserts[] = " @/?&=%'\":[]\\,#;+\t";
    int tried = 0, rejected = 0;
    setenv("PGPASSWORD", "S3cretPw0rd", 1);
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        for (size_t k = 0; k <= strlen(PW); k++) {
            for (const char *c = inserts; *c; c++) {
                char pw[64], in[256], err[512], red[512], msg[512];
                snprintf(pw, sizeof pw, "%.*s%c%s", (int)k, PW, *c, &PW[k]);
                snprintf(in, sizeof in, forms[f], pw);
                tried++;
                err[0] = '\0';
                char *n = pgbank_conninfo_normalize(in, err, sizeof err);
                if (!n) {
                    rejected++;
                    CHECK(err[0] != '\0');
                    CHECK_NO_LEAK(err);
                }
                pgbank_conninfo_redact(in, red, sizeof red);
                CHECK_NO_LEAK(red);
                /* A message quoting the string and, when libpq could use
                 * it, what it parsed and the password as typed. */
                char parsed[128] = "";
                PQconninfoOption *opts = n ? PQconninfoParse(n, NULL) : NULL;
                for (PQconninfoOption *o = opts; o && o->keyword; o++)
                    if (o->val && strcmp(o->keyword, "password") == 0)
                        snprintf(parsed, sizeof parsed, "%s", o->val);
                PQconninfoFree(opts);
                snprintf(msg, sizeof msg, "failed: %s | %s | %s | %s", in,
                         n && strstr(in, pw) ? pw : "", parsed, n ? n : "");
                pgbank_conninfo_scrub(in, msg, sizeof msg);
                CHECK_NO_LEAK(msg);
                if (leaks(err) || leaks(red) || leaks(msg))
                    fprintf(stderr, "  input: %s\n", in);
                free(n);
            }
        }
    }
    unsetenv("PGPASSWORD");
    printf("  %d mangled strings, %d rejected\n", tried, rejected);
}

/* The value libpq reads for keyword in conninfo, or NULL. */
static char *parsed_value(const char *conninfo, const char *keyword)
{
    char *v = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (o->val && strcmp(o->keyword, keyword) == 0)
            v = strdup(o->val);
    PQconninfoFree(opts);
    return v;
}

#define CHECK_PARSED(ci, keyword, want)                                       \
    do {                                                                      \
        char *v_ = parsed_value((ci), (keyword));                             \
        const char *w_ = (want);                                              \
        if (w_ ? !v_ || strcmp(v_, w_) != 0 : v_ != NULL) {                   \
            fprintf(stderr, "%s:%d: %s is \"%s\" in \"%s\", expected \"%s\"\n", \
                    __FILE__, __LINE__, (keyword), v_ ? v_ : "(none)",        \
                    (ci) ? (ci) : "(null)", w_ ? w_ : "(none)");              \
            t_failures++;                                                     \
        }                                                                     \
        free(v_);                                                             \
    } while (0)

static void set_replaces_removes_and_keeps_the_rest(void)
{
    char err[256];
    const char *uri = "postgresql+asyncpg://bank:" PW "@db.example.com:6543/money"
                      "?application_name=old&sslmode=require";
    char *ci = pgbank_conninfo_set(uri, "application_name", "new one's \\ name", err,
                                   sizeof err);
    CHECK(ci != NULL);
    CHECK_PARSED(ci, "application_name", "new one's \\ name");
    CHECK_PARSED(ci, "user", "bank");
    CHECK_PARSED(ci, "password", PW);
    CHECK_PARSED(ci, "host", "db.example.com");
    CHECK_PARSED(ci, "port", "6543");
    CHECK_PARSED(ci, "dbname", "money");
    CHECK_PARSED(ci, "sslmode", "require");
    /* NULL removes: what is left can be shown on a command line. */
    char *shown = pgbank_conninfo_set(ci, "password", NULL, err, sizeof err);
    CHECK(shown != NULL);
    CHECK_PARSED(shown, "password", NULL);
    CHECK_PARSED(shown, "user", "bank");
    CHECK_NO_LEAK(shown);
    free(shown);
    free(ci);
    /* Libpq's defaults in, one parameter out. */
    ci = pgbank_conninfo_set(NULL, "connect_timeout", "5", err, sizeof err);
    CHECK_STR(ci, "connect_timeout='5'");
    free(ci);
}

static void with_schema_appends_to_the_options(void)
{
    char err[256];
    unsetenv("PGOPTIONS");
    char *ci = pgbank_conninfo_with_schema("host=h options='-cwork_mem=1MB'", "pgbank_lab_7",
                                           err, sizeof err);
    CHECK_PARSED(ci, "options", "-cwork_mem=1MB -csearch_path=pgbank_lab_7");
    CHECK_PARSED(ci, "host", "h");
    free(ci);
    ci = pgbank_conninfo_with_schema("", "s", err, sizeof err);
    CHECK_PARSED(ci, "options", "-csearch_path=s");
    free(ci);
    /* An explicit options hides $PGOPTIONS: it is carried over. */
    setenv("PGOPTIONS", "-cstatement_timeout=5s", 1);
    ci = pgbank_conninfo_with_schema("postgresql://u@h/d", "lab", err, sizeof err);
    CHECK_PARSED(ci, "options", "-cstatement_timeout=5s -csearch_path=lab");
    CHECK_PARSED(ci, "dbname", "d");
    free(ci);
    unsetenv("PGOPTIONS");
}

static void editing_refuses_bad_input_without_the_password(void)
{
    static const char *const bad_schemas[] = {"", "Lab", "1lab", "a b", "a'b", "a-b",
                                              "a;DROP SCHEMA public",
                                              "a123456789012345678901234567890123456789"
                                              "012345678901234567890123"};
    char err[256];
    for (size_t i = 0; i < sizeof bad_schemas / sizeof *bad_schemas; i++) {
        err[0] = '\0';
        CHECK(pgbank_conninfo_with_schema("host=h password=" PW, bad_schemas[i], err,
                                          sizeof err) == NULL);
        CHECK(strstr(err, "invalid schema name") != NULL);
    }
    CHECK(pgbank_conninfo_with_schema("host=h", NULL, err, sizeof err) == NULL);
    err[0] = '\0';
    CHECK(pgbank_conninfo_set("host=h password=" PW, "passwort", "x", err, sizeof err) == NULL);
    CHECK(strstr(err, "passwort") != NULL);
    CHECK_NO_LEAK(err);
    static const char *const malformed[] = {
        "host=h password=" PW " junk",     "host=h password='" PW,
        "postgresql://u:" PW "@h:99999/d", "postgresql://u:" PW "@h/d?nope=1",
        "postgresql://u:S3cret@Pw0rd@h/d", "mysql://u:" PW "@h/d"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        err[0] = '\0';
        CHECK(pgbank_conninfo_set(malformed[i], "application_name", "x", err, sizeof err) ==
              NULL);
        CHECK(err[0] != '\0');
        CHECK_NO_LEAK(err);
        err[0] = '\0';
        CHECK(pgbank_conninfo_with_schema(malformed[i], "lab", err, sizeof err) == NULL);
        CHECK(err[0] != '\0');
        CHECK_NO_LEAK(err);
    }
}

int main(void)
{
    unsetenv("PGPASSWORD");
    RUN(accepted_forms_are_normalised);
    RUN(malformed_strings_are_rejected_without_the_password);
    RUN(redact_hides_the_password_in_every_form);
    RUN(scrub_hides_the_password_in_messages);
    RUN(mangled_passwords_never_leak);
    RUN(set_replaces_removes_and_keeps_the_rest);
    RUN(with_schema_appends_to_the_options);
    RUN(editing_refuses_bad_input_without_the_password);
    TEST_EXIT();
}
