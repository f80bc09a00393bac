"""The registrar: bindings of addresses-of-record to contacts (RFC 3261 §10.3, RFC 3327,
RFC 5626), sans-IO but for its store. See docs/architecture.md, "Sans-IO cores"."""
