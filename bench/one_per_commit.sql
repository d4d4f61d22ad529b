-- one_per_commit.sql - what `pgbank bench --vs-pgbench` runs as
-- "one_per_commit": the atomic strategy's guarded UPDATE, one per
-- transaction.  Run it by hand on the bench schema with:
--   pgbench -n -c 16 -j 1 -T 10 -M prepared -D naccounts=10000 \
--     -f bench/one_per_commit.sql "host=... dbname=... options='-csearch_path=pgbank_bench'"
-- (pgbank bench writes the same script with the number inlined, and
-- random_zipfian(1, N, 1.1) for --distribution zipf.)
\set id random(1, :naccounts)
UPDATE accounts SET balance = balance - 1 WHERE id = :id AND balance >= 1 RETURNING balance;
