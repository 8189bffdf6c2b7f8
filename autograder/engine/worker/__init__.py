"""What runs inside the sandbox: the worker process and its probes.

This folder, and only this folder of the kit, is made visible to a submission's worker.
It must hold nothing secret: no expected values, no reference code, no hidden tests.
"""
