"""Stockade's engine: images (references, registry, store, unpacking) and containers (runtime, lifecycle).

The engine imports nothing else of Stockade's; trust, policies, hardening and the command line sit on
top of it (see ARCHITECTURE.md).
"""
