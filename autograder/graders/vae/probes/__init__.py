"""The vae probes: the only assignment code the sandbox sees. Nothing secret lives here."""
