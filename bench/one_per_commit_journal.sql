-- one_per_commit_journal.sql - what `pgbank bench --vs-pgbench` runs as
-- "one_per_commit" when the journal is on (bench's default): the atomic
-- strategy's journaled withdrawal (src/sql.c, pgbank_debit_j), one per
-- transaction, so pgbench writes the same journal row per withdrawal as
-- pgbank does.  The ten_per_commit_pipeline script runs ten of these
-- between BEGIN and COMMIT inside \startpipeline..\endpipeline.  Run it by
-- hand on the bench schema with:
--   pgbench -n -c 16 -j 1 -T 10 -M prepared -D naccounts=10000 \
--     -f bench/one_per_commit_journal.sql "host=... options='-csearch_path=pgbank_bench_N'"
\set id random(1, :naccounts)
WITH u AS (UPDATE accounts SET balance = balance - 1, jseq = (SELECT nextval('pgbank_journal_seq')), jprev = jseq WHERE id = :id AND balance >= 1 AND (SELECT set_config('pgbank.own', 'on', true)) = 'on' RETURNING id, balance, jseq, jprev) INSERT INTO pgbank_journal (seq, account, prev, op, amount, balance_after, strategy) SELECT jseq, id, jprev, 'withdraw', -1, balance, 'pgbench' FROM u RETURNING balance_after;
