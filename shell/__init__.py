"""The imperative shell: the command line and the wiring of real parts (the composition root)."""
