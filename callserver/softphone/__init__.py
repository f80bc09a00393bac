"""The agents' WebRTC softphone: a browser's audio through aiortc, bridged as a SIP phone.

See docs/architecture.md, "The agent softphone"; operators: docs/operations.md, "Agent
softphone".
"""
