# The race lab (pgbank race) against the throwaway server: the unsafe
# strategies lose money in every scenario, the safe ones never do.
pgbank_cli_test("pgbank race catches explicit and begin losing money and never the safe strategies" cli_race.sh)
