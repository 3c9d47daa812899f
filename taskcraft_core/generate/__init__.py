"""The TaskCraft method: atomic tasks from document chunks, verified by a tool-using agent, then
extended in depth (multi-hop) and width (composition), each graded for difficulty; and exploration
mode (METHOD §2, after AutoPlay): tasks written from what an explorer saw walking the link graph.

Modules: context (GenerationContext, make_engine), engine (the Engine protocol and the LLM engine),
prompts (all prompt wording), atomic, verify (shared by every kind), depth, width, difficulty, text
(answer matching and fact spans shared by both engines); for exploration, explore_records (what the
explorer did, saw and remembers, and the candidates written from it), explorer (explore_corpus,
choose_start_page) and explore (generate_explore_tasks: grounding, execution and verification).
The offline engine's exploration steps live in taskcraft_core/offline_explore.py.
"""
