"""Chat models for any OpenAI-compatible endpoint, structured calls, and the response cache."""
