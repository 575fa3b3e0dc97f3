"""Kinds of change: what one kind of input row asks of the tenant, from reading it to reporting it.

Each kind is a folder here (``licenses/``, ``addons/``) with its rows, checks, capacity pools, plan,
operations and result columns; the shared machinery (``jobs``, the journal, the pacer, the results writer,
the CLI) does not know their details.
"""
