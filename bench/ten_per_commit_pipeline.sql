-- ten_per_commit_pipeline.sql - what `pgbank bench --vs-pgbench` runs as
-- "ten_per_commit_pipeline": ten guarded UPDATEs on ten random accounts in
-- one transaction, sent as one pipeline (one round trip, one commit).  The
-- ids are not sorted, so concurrent transactions can deadlock; pgbench
-- counts those as failed transactions.  Needs pgbench 14 or later and
-- -M extended or prepared:
--   pgbench -n -c 16 -j 1 -T 10 -M prepared -D naccounts=10000 \
--     -f bench/ten_per_commit_pipeline.sql "host=... options='-csearch_path=pgbank_bench'"
-- Withdrawals per second = tps x 10.
\set id1 random(1, :naccounts)
\set id2 random(1, :naccounts)
\set id3 random(1, :naccounts)
\set id4 random(1, :naccounts)
\set id5 random(1, :naccounts)
\set id6 random(1, :naccounts)
\set id7 random(1, :naccounts)
\set id8 random(1, :naccounts)
\set id9 random(1, :naccounts)
\set id10 random(1, :naccounts)
\startpipeline
BEGIN;
UPDATE accounts SET balance = balance - 1 WHERE id = :id1 AND balance >= 1 RETURNING balance;
UPDATE accounts SET balance = balance - 1 WHERE id = :id2 AND balance >= 1 RETURNING balance;
UPDATE accounts SET balance = balance - 1 WHERE id = :id3 AND balance >= 1 RETURNING balance;
UPDATE accounts SET balance = balance - 1 WHERE id = :id4 AND balance >= 1 RETURNING balance;
UPDATE accounts SET balance = balance - 1 WHERE id = :id5 AND balance >= 1 RETURNING balance;
UPDATE accounts SET balance = balance - 1 WHERE id = :id6 AND balance >= 1 RETURNING balance;
UPDATE accounts SET balance = balance - 1 WHERE id = :id7 AND balance >= 1 RETURNING balance;
UPDATE accounts SET balance = balance - 1 WHERE id = :id8 AND balance >= 1 RETURNING balance;
UPDATE accounts SET balance = balance - 1 WHERE id = :id9 AND balance >= 1 RETURNING balance;
UPDATE accounts SET balance = balance - 1 WHERE id = :id10 AND balance >= 1 RETURNING balance;
COMMIT;
\endpipeline
