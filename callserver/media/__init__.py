"""Media: RTP/RTCP, G.711, DTMF, prompts, recording and bridging on one shared 20 ms clock.

The packet and codec modules (g711, rtp, rtcp, jitter, dtmf, inband, mixer, ports, stream, say)
are sans-IO: bytes, arrays and ``now`` in, values out. The clock, the engine, prompts and
recording do the I/O.
"""
