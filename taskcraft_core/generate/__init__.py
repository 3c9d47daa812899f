"""The TaskCraft method: atomic tasks from document chunks, verified by a tool-using agent, then
extended in depth (multi-hop) and width (composition), each graded for difficulty.

Modules: context (GenerationContext, make_engine), engine (the Engine protocol and the LLM engine),
prompts (all prompt wording), atomic, verify, depth, width, difficulty, text (answer matching and
fact spans shared by both engines).
"""
