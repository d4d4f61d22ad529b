# pgbank chaos against the throwaway server: keyed money operations under
# backend terminations and server crashes (SIGQUIT + restart), checked
# against a model; and bad input everywhere, including failures outside
# pgbank (server down, schema missing or misshapen, read-only server).
# RUN_SERIAL: the chaos test crash-stops the shared throwaway server, and
# the bad-input test stops and starts servers of its own.
pgbank_cli_test("pgbank chaos loses, creates and forgets nothing while backends die and the server crashes" cli_chaos.sh)
set_tests_properties("pgbank chaos loses, creates and forgets nothing while backends die and the server crashes"
  PROPERTIES LABELS "cli;chaos" RUN_SERIAL TRUE)
pgbank_cli_test("every pgbank command refuses bad input with one line and changes nothing" cli_badinput.sh)
set_tests_properties("every pgbank command refuses bad input with one line and changes nothing"
  PROPERTIES LABELS "cli;badinput" RUN_SERIAL TRUE)
