"""Discord extensions: thin cogs that parse options, call the job service and answer the interaction."""
