"""Router settings: typed defaults, and loading them from a file, the environment and flags."""
