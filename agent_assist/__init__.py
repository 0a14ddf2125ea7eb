"""agent-assist: local, real-time, trauma-informed agent assist for contact centres."""

__version__ = "0.1.0"
