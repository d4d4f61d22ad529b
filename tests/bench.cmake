# pgbank bench against the throwaway server: short runs whose figures must
# be sane (never fast: no speed is asserted), the money check, pgbench side
# by side when installed, the plot when gnuplot is, and bad input.
pgbank_cli_test("pgbank bench measures withdrawals, checks the money and compares with pgbench" cli_bench.sh)
set_tests_properties("pgbank bench measures withdrawals, checks the money and compares with pgbench"
  PROPERTIES LABELS "cli;bench")
