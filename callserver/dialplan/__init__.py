"""Dialplans: per-number files operators edit, compiled at load time and run on each call.

See DESIGN.md (dialplan layer) and STYLE.md §7; docs/dialplans.md documents the file format.
"""
