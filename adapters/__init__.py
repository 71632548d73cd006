"""Adapters: the code that talks to the world (OpenRouter, the console, later Slack and Discord)."""
