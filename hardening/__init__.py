"""Hardening: seccomp profiles, capability sets, the hardened defaults, and the CIS-style audit."""
