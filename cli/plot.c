/*
 * plot.c - `--plot FILE.png`: gnuplot as a child (src/proc.h, never a
 * shell) reading its script from a temporary file, its PNG copied to FILE
 * once it succeeded (see plot.h).
 */
#include "plot.h"

#include "internal.h"
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_plot_find_gnuplot(char *out, size_t len)
{
    const char *env = getenv("PGBANK_GNUPLOT");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return pgbank__is_executable(out);
    }
    return pgbank__find_in_path("gnuplot", out, len);
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

/* A temporary file in $TMPDIR (else /tmp): its descriptor, or -1 with err. */
static int temp_file(char *path, size_t len, const char *what, char *err, size_t errlen)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    if ((size_t)snprintf(path, len, "%s/pgbank-plot-%s-XXXXXX", dir, what) >= len) {
        snprintf(err, errlen, "TMPDIR is too long");
        path[0] = '\0';
        return -1;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        snprintf(err, errlen, "could not create a temporary file in %s: %s", dir,
                 strerror(errno));
        path[0] = '\0';
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

int cli_plot_begin(cli_plot *p, const char *gnuplot, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    snprintf(p->gnuplot, sizeof p->gnuplot, "%s", gnuplot);
    p->tmpfd = temp_file(p->tmp, sizeof p->tmp, "png", err, errlen);
    if (p->tmpfd < 0)
        return -1;
    int fd = temp_file(p->script_path, sizeof p->script_path, "gp", err, errlen);
    if (fd >= 0 && !(p->script = fdopen(fd, "w"))) {
        snprintf(err, errlen, "fdopen: %s", strerror(errno));
        close(fd);
    }
    if (!p->script) {
        if (p->script_path[0])
            unlink(p->script_path);
        close(p->tmpfd);
        unlink(p->tmp);
        return -1;
    }
    return 0;
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
    int rc = fclose(p->script) == 0 ? 0 : -1;
    p->script = NULL;
    if (rc)
        snprintf(err, errlen, "could not write gnuplot's script: %s", strerror(errno));
    /* gnuplot reads the script file and draws on stdout; its complaints
     * go to our stderr. */
    pgbank__proc_opts o;
    pgbank__proc_opts_init(&o);
    o.out_fd = p->tmpfd;
    o.err_fd = 2;
    char *const argv[] = {p->gnuplot, p->script_path, NULL};
    pid_t pid;
    fflush(NULL); /* what was printed comes before gnuplot's messages */
    if (rc == 0 && pgbank__proc_spawn(argv, &o, &pid, err, errlen) != 0)
        rc = -1;
    int status = rc == 0 ? pgbank__proc_wait(pid, -1, NULL, NULL) : 0;
    if (rc == 0 && status == 127) {
        snprintf(err, errlen, "gnuplot could not be run");
        rc = -1;
    } else if (rc == 0 && status > 128) {
        snprintf(err, errlen, "gnuplot was killed by signal %d", status - 128);
        rc = -1;
    } else if (rc == 0 && status != 0) {
        snprintf(err, errlen, "gnuplot failed (exit %d)", status);
        rc = -1;
    } else if (rc == 0) {
        rc = copy_out(p, file, err, errlen);
    }
    close(p->tmpfd);
    unlink(p->tmp);
    unlink(p->script_path);
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
