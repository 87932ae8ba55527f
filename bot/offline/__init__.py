"""The stand-ins: a fake Slack, the vendor simulators and the demo's terminal chat, all on loopback.

For the tests, the benchmark and `jobstatus-bot demo`. Nothing in the product imports this package (only the
`demo` command, lazily, inside its function); the Docker image does not carry it. It may import any part of
the product: it stands apart from the layers (tests/unit/test_import_graph.py).
"""
