"""Click commands, one module per area; each parses, calls pure functions, renders."""
