"""The poll engine's benchmark: `python -m bench` (1,000 / 10,000 / 50,000 watches) or `--quick`.

It measures, per size, against the real bot process (`python -m bot run`) with the vendor simulators
(their own process) and the fake Slack (this process), all on 127.0.0.1:

- polls per second sustained, and the bot's CPU time (user+system, psutil) per 1,000 polls;
- back to back: the bot polling as fast as it can vs a bare httpx.AsyncClient loop making the same
  requests to the same simulators at the same concurrency (bench/raw.py), and the ratio;
- latency from a job's state change in the simulator to the thread reply reaching the fake Slack;
- slash-command ack time while the poller is busy (steady and back to back);
- the bot's RSS; start-up time until every watch is in the schedule;
- requests sent per vendor per job-hour (and Immuta's requests per cycle per 200 jobs).

It is a measurement tool: it prints a table and writes `bench/results/<timestamp>.json` and
`bench/results/latest.json`; the targets are recorded beside the figures, never asserted.
How a run goes: bench/runner.py.
"""
