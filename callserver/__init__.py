"""callserver: a real-time SIP/IVR call-control server."""

__version__ = "0.1.0"
