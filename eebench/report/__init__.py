"""Paper-style tables and figures."""
