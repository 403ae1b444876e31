"""State and aggregate maths of the contract: pure, no I/O, no clock reads."""
