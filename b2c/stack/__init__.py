"""`b2c up`: the whole stack on one machine: its settings and ports, the supervisor, and the demo."""
