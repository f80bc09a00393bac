"""Call-centre queues: waiting callers, agents, and the queue event log with its statistics.

Sans-IO like the registrar (time comes in as ``now``); ``centre.CallCentre`` is the facade of
the queues and agents. Only the stores (``eventlog``, ``store``) do I/O, and only the adapters
and commands import them.
"""
