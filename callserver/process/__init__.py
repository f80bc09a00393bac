"""The server process itself: its logs, its garbage collector, its pid file, and the pacing of
background work on its event loop. Nothing here knows about SIP, media or calls.
"""
