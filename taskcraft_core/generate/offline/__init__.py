"""The offline engine: every step of the method done deterministically, with no model endpoint."""
