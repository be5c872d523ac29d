"""invoke bench: each benchmark next to its baseline, run in the same invocation (python -m tests.bench)."""
