"""Real parts for tests: a registry server on loopback, images built with independent tools."""
