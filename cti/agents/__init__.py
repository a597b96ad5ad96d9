"""Agent accounts: password hashes, the agents table, ``cti agents``."""
