"""Call-centre queues: waiting callers, agents, and the queue event log with its statistics.

Sans-IO like the registrar (time comes in as ``now``); only the stores (``eventlog``) do I/O,
and only the adapters and commands import them.
"""
