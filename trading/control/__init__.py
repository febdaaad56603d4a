"""Operator control from outside the run: ``trio-trade ctl`` over a Unix socket."""
