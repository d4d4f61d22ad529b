/*
 * faults.h - faults injected into a lab run (`pgbank chaos`), at random
 * intervals while the load runs:
 *   terminate  every backend of the run's engine (its application_name) is
 *              killed with pg_terminate_backend() from the control
 *              connection;
 *   crash      (private server only) the postmaster gets SIGQUIT
 *              (pgbank_server_kill), which is what `pg_ctl stop -m
 *              immediate` sends, and is started again by a child process
 *              while the clients keep going.
 */
#ifndef PGBANK_CLI_LAB_FAULTS_H
#define PGBANK_CLI_LAB_FAULTS_H

#include "lab.h"

enum { LAB_FAULT_TERMINATE = 1, LAB_FAULT_CRASH = 2 };

typedef struct lab_faults {
    /* Set by the command. */
    lab_schema *schema;   /* the run: its control connection and appname */
    const char *data_dir; /* the private server's (crash) */
    int kinds;            /* LAB_FAULT_* to inject; 0: none */
    int64_t duration_ns;  /* the run's: faults are spaced to fit it */
    uint64_t *rng;
    /* What happened. */
    int64_t terminations, crashes, backends_killed, failures;
    int64_t downtime_ns;  /* crash to restart, summed */
    char error[300];      /* the last fault that could not be injected */
    char fatal[512];      /* the run cannot go on (a server that stays down) */
    /* State. */
    int seq;
    int64_t next_ns;
    int crash_state, restart_tries;
    pid_t restart_pid;
    int64_t crash_t0;
} lab_faults;

/* Schedules the first fault after `now`. */
void lab_faults_start(lab_faults *f, int64_t now);

/* Injects the fault that is due (unless `stopping`: no new fault after
 * the deadline) and advances a crash in progress.  Returns when it wants
 * to be called again, 0 for no wish. */
int64_t lab_faults_step(lab_faults *f, int64_t now, int stopping);

/* 1 while a crashed server is being restarted. */
int lab_faults_busy(const lab_faults *f);

/* Waits until a crash in progress is over: the server must be up for
 * the checks. */
void lab_faults_settle(lab_faults *f);

#endif
