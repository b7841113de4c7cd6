"""`edgekit demo`: keyword spotting end to end, offline (`run`: `DemoConfig`, `run_demo`)."""
