"""Several nodes behind a SIP edge: what they share in Redis (docs/scaling.md)."""
