"""Trial set-up: centers, the manufacturing lab, protocol versions."""
