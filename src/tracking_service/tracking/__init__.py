"""The tracking pipeline: pure rules (progress, transitions, delays, cadence, messages, plan)
over plain data (`state`, `config`), and the edges that load and store it."""
