"""The solving agent: LangChain's agent loop over the studio's tools, with trajectory capture."""
