"""The admin server: an HTTP API (aiohttp) on the server's own loop, its health checks and
its Prometheus endpoint, with bearer tokens stored hashed in the settings."""
