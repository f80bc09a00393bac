"""Outbound campaigns: a list of numbers called in a time window at a pace, a dialplan run on
each answered call, a result per number (docs/callcentre.md, "Campaigns")."""
