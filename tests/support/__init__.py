"""Harnesses the tests and the tools under ``tools/`` share: environment checks, the CLI
runner, real brokers and sshd, the MJPEG server, the fault scenarios and the fuzzer.

Nothing here is a test; ``tools/`` imports these modules, never a ``test_*.py`` file.
"""
