"""What every layer leans on and that knows nothing of the flow: `config` (the YAML config and the
environment, checked into typed models), `logs` (text or JSON lines) and `network` (what network trouble comes
to, in an operator's words).

May import: domain only."""
