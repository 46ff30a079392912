"""Boards and the OS releases they run: targets/*.toml and releases/*.toml, loaded and checked."""
