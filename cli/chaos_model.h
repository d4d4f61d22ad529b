/*
 * chaos_model.h - what `pgbank chaos` believes the bank holds, and the
 * verdict when the database is compared with it (in the manner of
 * Jepsen's bank test).  No database here: the command feeds the model the
 * answers its clients got, then the journal rows and balances it read.
 *
 * An operation is one logical request: with a key (keyed mode) it may be
 * sent many times and is answered once; every answer before that is an
 * unknown outcome (the connection died after COMMIT was sent), a database
 * error or retries exhausted, and the same key goes again.  Unkeyed, an
 * unknown outcome is final: such an operation is never sent again.
 */
#ifndef PGBANK_CLI_CHAOS_MODEL_H
#define PGBANK_CLI_CHAOS_MODEL_H

#include "pgbank.h"

#include <stddef.h>
#include <stdint.h>

typedef struct chaos_op {
    unsigned char kind;     /* pgbank_op_kind: withdraw, deposit, transfer */
    unsigned char answered; /* 1 + pgbank_status once final, else 0 */
    unsigned char journal;  /* the journal rows found for it (capped at 200) */
    unsigned char unknowns; /* unknown outcomes it met (capped at 255) */
    int from, to;           /* account indexes */
    int64_t amount;
} chaos_op;

typedef struct chaos_account {
    int64_t id;
    int64_t balance; /* what it should hold */
} chaos_account;

typedef struct chaos_model {
    int unkeyed;
    int naccounts;
    chaos_account *accounts; /* ascending ids once chaos_model_ready() ran */
    chaos_op *ops;
    size_t nops, capops;
    int nomem;
    /* Answers: every one counted once. */
    int64_t ok, refused, no_account, conflicts, invalid, replayed;
    int64_t unknown;          /* unknown outcomes */
    int64_t unknown_resolved; /* keyed: of those, settled later by their key */
    int64_t unknown_ops;      /* operations that met at least one */
    /* The verdict. */
    int64_t money_lost, money_created, negative, missing, without_result;
    int64_t applied_not_acked, acked_not_applied, applied_twice, torn, stray_rows;
    int64_t unknown_applied; /* unkeyed unknown outcomes the journal shows applied */
} chaos_model;

/* Room for naccounts accounts.  Returns 0, or -1 when out of memory. */
int chaos_model_init(chaos_model *m, int naccounts, int unkeyed);
void chaos_model_free(chaos_model *m);

/* Account i was opened as `id` holding `balance`. */
void chaos_model_open(chaos_model *m, int i, int64_t id, int64_t balance);
/* Every account is open: sorts them by id (lookups search). */
void chaos_model_ready(chaos_model *m);
/* The index of account id, or -1. */
int chaos_model_index(const chaos_model *m, int64_t id);

/* A new operation; returns its number, or -1 when out of memory. */
int64_t chaos_model_op(chaos_model *m, pgbank_op_kind kind, int from, int to, int64_t amount);

/* An answer to operation `op`.  Returns 1 when it is final (the client
 * moves on), 0 when the operation must be sent again, same key and
 * parameters. */
int chaos_model_answer(chaos_model *m, int64_t op, pgbank_status st, int replayed);

/* The check, in this order: the journal rows of each operation (found by
 * its key, or unkeyed by its distinct amount; rows of no operation are
 * strays), chaos_model_settle(), then every balance in the database. */
void chaos_model_journal(chaos_model *m, int64_t op, int64_t rows);
void chaos_model_stray(chaos_model *m, int64_t rows);
void chaos_model_settle(chaos_model *m);
void chaos_model_balance(chaos_model *m, int64_t id, int64_t balance, int *seen);

/* 1 when something went wrong: money, answers or the journal. */
int chaos_model_failed(const chaos_model *m);

#endif
