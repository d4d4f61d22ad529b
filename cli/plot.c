/*
 * plot.c - `--plot FILE.png`: gnuplot as a child, fed on stdin, its PNG
 * copied to FILE once it succeeded (see plot.h); and finding the programs
 * pgbank runs (gnuplot, pgbench) in $PATH.
 */
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
           access(path, X_OK) == 0;
}

int cli_is_executable(const char *path)
{
    return is_executable(path);
}

int cli_find_in_path(const char *name, char *out, size_t len)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        if (n && (size_t)snprintf(out, len, "%.*s/%s", (int)n, path, name) < len &&
            is_executable(out))
            return 1;
        if (!end)
            break;
        path = end + 1;
    }
    out[0] = '\0';
    return 0;
}

int cli_plot_find_gnuplot(char *out, size_t len)
{
    const char *env = getenv("PGBANK_GNUPLOT");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return is_executable(out);
    }
    return cli_find_in_path("gnuplot", out, len);
}

int cli_plot_check(const cli *c, const char *file, char *gnuplot, size_t len)
{
    if (!file[0])
        return cli_usage_error(c, "--plot needs a file name");
    if (!cli_plot_find_gnuplot(gnuplot, len)) {
        fprintf(stderr, "pgbank %s: gnuplot not found: install gnuplot-nox to "
                "draw plots (Debian/Ubuntu: apt-get install gnuplot-nox; or "
                "set PGBANK_GNUPLOT), or run without --plot\n", c->command);
        return CLI_EXIT_USAGE;
    }
    int existed = access(file, F_OK) == 0;
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return cli_usage_error(c, "cannot write the plot to '%s': %s", file,
                               strerror(errno));
    close(fd);
    if (!existed)
        unlink(file);
    return 0;
}

static void set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0)
        fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

int cli_plot_begin(cli_plot *p, const char *gnuplot, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->tmpfd = -1;
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    if ((size_t)snprintf(p->tmp, sizeof p->tmp, "%s/pgbank-plot-XXXXXX", dir) >=
        sizeof p->tmp) {
        snprintf(err, errlen, "TMPDIR is too long");
        return -1;
    }
    p->tmpfd = mkstemp(p->tmp);
    if (p->tmpfd < 0) {
        snprintf(err, errlen, "could not create a temporary file in %s: %s",
                 dir, strerror(errno));
        return -1;
    }
    set_cloexec(p->tmpfd);
    int in[2];
    if (pipe(in) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    set_cloexec(in[0]);
    set_cloexec(in[1]);
    fflush(NULL); /* what was printed comes before gnuplot's messages */
    p->pid = fork();
    if (p->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        goto fail;
    }
    if (p->pid == 0) {
        /* Above 2 first, so neither clobbers the other on 0 or 1. */
        int script = fcntl(in[0], F_DUPFD, 3), png = fcntl(p->tmpfd, F_DUPFD, 3);
        if (script < 0 || png < 0 || dup2(script, 0) < 0 || dup2(png, 1) < 0)
            _exit(127);
        close(script);
        close(png);
        char *const argv[] = {(char *)gnuplot, NULL};
        execv(gnuplot, argv);
        _exit(127);
    }
    close(in[0]);
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &p->old_pipe); /* gnuplot may die first */
    p->script = fdopen(in[1], "w");
    if (!p->script) {
        snprintf(err, errlen, "fdopen: %s", strerror(errno));
        close(in[1]); /* gnuplot reads EOF and ends */
        while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        sigaction(SIGPIPE, &p->old_pipe, NULL);
        goto fail;
    }
    return 0;
fail:
    close(p->tmpfd);
    unlink(p->tmp);
    return -1;
}

/* Copies the temporary PNG to file.  Returns 0 or -1 with err set. */
static int copy_out(cli_plot *p, const char *file, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(p->tmpfd, &st) != 0 || st.st_size == 0) {
        snprintf(err, errlen, "gnuplot drew nothing");
        return -1;
    }
    if (lseek(p->tmpfd, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "could not read the drawing: %s", strerror(errno));
        return -1;
    }
    int out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (out < 0) {
        snprintf(err, errlen, "could not write %s: %s", file, strerror(errno));
        return -1;
    }
    char buf[65536];
    int rc = 0;
    for (;;) {
        ssize_t n = read(p->tmpfd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "could not read the drawing: %s",
                     strerror(errno));
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                snprintf(err, errlen, "could not write %s: %s", file,
                         strerror(errno));
                rc = -1;
                break;
            }
            off += w;
        }
        if (rc)
            break;
    }
    if (close(out) != 0 && rc == 0) {
        snprintf(err, errlen, "could not write %s: %s", file, strerror(errno));
        rc = -1;
    }
    return rc;
}

int cli_plot_end(cli_plot *p, const char *file, char *err, size_t errlen)
{
    fclose(p->script); /* EOF: gnuplot draws, then ends */
    p->script = NULL;
    int status = 0;
    pid_t w;
    while ((w = waitpid(p->pid, &status, 0)) < 0 && errno == EINTR)
        ;
    sigaction(SIGPIPE, &p->old_pipe, NULL);
    int rc;
    if (w < 0) {
        snprintf(err, errlen, "waitpid: %s", strerror(errno));
        rc = -1;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        snprintf(err, errlen, "gnuplot could not be run");
        rc = -1;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFEXITED(status))
            snprintf(err, errlen, "gnuplot failed (exit %d)",
                     WEXITSTATUS(status));
        else
            snprintf(err, errlen, "gnuplot was killed by signal %d",
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        rc = -1;
    } else {
        rc = copy_out(p, file, err, errlen);
    }
    close(p->tmpfd);
    unlink(p->tmp);
    p->tmpfd = -1;
    return rc;
}

void cli_plot_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        if (*q == '"' || *q == '\\')
            fprintf(f, "\\%c", *q);
        else if (*q == '\n')
            fputs("\\n", f);
        else if (*q < 0x20 || *q == 0x7f)
            fputc('?', f);
        else
            fputc(*q, f);
    }
    fputc('"', f);
}
