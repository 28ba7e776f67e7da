"""The proof harness of issue 11: the real ``glimpse-agent run`` process against the Glimpse
emulator on one faked clock (libfaketime), killed (``crash``) or served faults (``soak``).
Each full form is one command (``python -m tests.soak.crash``, ``python -m tests.soak.soak``);
``test_short.py`` runs a short form of each under pytest. Imports the emulators and the stdlib."""
