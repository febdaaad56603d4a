"""Operator control from outside the run: ``trio-trade ctl`` over a Unix socket (local.py,
client.py), the Telegram bot (telegram*.py), and what both show: the status table and health."""
