"""Loopback simulators of the five vendor job-status APIs: one module per vendor, what they share in core.py,
and `SimulatorServer` (server.py) that serves them all on one port."""
