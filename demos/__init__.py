"""Live demos: one page and one websocket consumer per engine, plus the job framework they share."""
