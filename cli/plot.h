/*
 * plot.h - `--plot FILE.png`: drawing with gnuplot, for any command.
 *
 * gnuplot runs as a child (never a shell) and reads its script, data
 * included (inline datablocks), from a temporary file.  The PNG comes back
 * on its stdout, into another temporary file (mkstemp) that is copied to
 * FILE only once gnuplot succeeded: the user's path is never written into
 * the script, and a failed plot leaves FILE as it was.
 *
 *   char gnuplot[CLI_PATH_MAX];
 *   rc = cli_plot_check(c, file, gnuplot, sizeof gnuplot); // before running
 *   ...measure...
 *   cli_plot p;
 *   if (cli_plot_begin(&p, gnuplot, err, sizeof err) == 0) {
 *       fprintf(p.script, "...");   // ends with the last plot command
 *       ok = cli_plot_end(&p, file, err, sizeof err) == 0;
 *   }
 */
#ifndef PGBANK_CLI_PLOT_H
#define PGBANK_CLI_PLOT_H

#include "cli.h"

#include <stdio.h>
#include <sys/types.h>

/* How a script starts: a PNG terminal of w x h pixels (pngcairo when
 * gnuplot has it, else png; no enhanced-text markup, so names print as
 * they are), drawing on stdout. */
#define CLI_PLOT_TERMINAL(w, h)                                               \
    "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"                     \
    "  set terminal pngcairo noenhanced size " #w "," #h " font ',10'\n"    \
    "} else {\n"                                                             \
    "  set terminal png noenhanced size " #w "," #h "\n"                    \
    "}\n"                                                                    \
    "set output\n"

/* gnuplot: $PGBANK_GNUPLOT, else "gnuplot" in $PATH.  Returns 1 when it is
 * an executable file (its path in out), else 0. */
int cli_plot_find_gnuplot(char *out, size_t len);

/* What --plot FILE needs before anything runs: gnuplot (into gnuplot[]) and
 * a FILE that can be written (a FILE that did not exist is not left
 * behind).  Returns 0, or CLI_EXIT_USAGE after a message on stderr:
 * "pgbank CMD: gnuplot not found: install gnuplot-nox to draw plots ...". */
int cli_plot_check(const cli *c, const char *file, char *gnuplot, size_t len);

/* One gnuplot at work. */
typedef struct cli_plot {
    FILE *script; /* the caller writes the script here */
    char script_path[CLI_PATH_MAX];
    char gnuplot[CLI_PATH_MAX];
    int tmpfd; /* the PNG gnuplot draws */
    char tmp[CLI_PATH_MAX];
} cli_plot;

/* Prepares gnuplot's script.  Returns 0 (write to p->script, then
 * cli_plot_end()), or -1 with the reason in err (nothing to clean up). */
int cli_plot_begin(cli_plot *p, const char *gnuplot, char *err, size_t errlen);

/* Ends the script, runs gnuplot on it and copies its PNG to file.  Returns
 * 0, or -1 with the reason in err.  The temporary files are always
 * removed. */
int cli_plot_end(cli_plot *p, const char *file, char *err, size_t errlen);

/* Writes s as a double-quoted gnuplot string: backslashes and double
 * quotes escaped, a newline as \n (a line break in titles and labels),
 * other control characters as '?'. */
void cli_plot_string(FILE *f, const char *s);

#endif
