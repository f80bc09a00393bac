"""Media: RTP/RTCP, G.711, DTMF, prompts, recording and bridging on one shared 20 ms clock.

Every module is sans-IO (bytes, arrays and ``now`` in, values out) but those that do the I/O:
the clock, the engine with its streams' sockets (stream_sockets), statistics
(engine_statistics) and socket I/O (rtpio), audio files (audio_files), prompts and their cache
(prompt_cache), synthesis (synth), recording and capture. The import contracts hold a new
module to sans-IO.
"""
