# pgbank through PgBouncer (Debian's package) in transaction pooling mode,
# with --unnamed-statements: the withdraw tests for every strategy, and the
# race lab refusing to run there (it needs a schema of its own).  The test starts a PgBouncer of its own in a temporary
# directory, in front of the throwaway server, and always stops it; it
# runs PgBouncer as the server's account against its socket, so it does
# not apply to a database named from outside (label private-server).  It
# fails, rather than skips, when pgbouncer is not installed: CI installs it.
pgbank_cli_test("pgbank moves money through PgBouncer in transaction pooling mode with unnamed statements"
  cli_pgbouncer.sh)
set_tests_properties("pgbank moves money through PgBouncer in transaction pooling mode with unnamed statements"
  PROPERTIES LABELS "cli;pgbouncer")
pgbank_private_server_only("pgbank moves money through PgBouncer in transaction pooling mode with unnamed statements"
  "it runs PgBouncer as the private server's account in front of its socket")
