"""The LLM engine: every step of the method as a call to a chat model with a structured answer."""
