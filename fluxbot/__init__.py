"""fluxbot: a self-hosted Discord bot that turns slash commands into Flux images."""

__version__ = "0.1.0"
