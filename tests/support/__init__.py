"""Test support code shared by the test-suite (real servers on loopback: see `procs`)."""
