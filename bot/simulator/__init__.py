"""Loopback simulators of the five vendor job-status APIs, for the demo and the tests."""
