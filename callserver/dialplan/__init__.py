"""Dialplans: per-number files operators edit, compiled at load time and run on each call.

See docs/architecture.md ("Dialplans as data"); docs/dialplans.md documents the file format.
"""
