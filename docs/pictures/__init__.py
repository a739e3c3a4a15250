"""The README's pictures of what members see, made from the bot's real cards (see README.md here)."""
