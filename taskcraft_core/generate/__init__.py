"""The TaskCraft method: atomic tasks from document chunks, verified by a tool-using agent, then
extended in depth (multi-hop) and width (composition), each graded for difficulty.

`protocol` names the steps both engines implement (`llm/`, `offline/`), `factory` builds one;
`atomic`, `depth`, `width` and `verify` are the method over any engine; `explore/` is exploration
mode (METHOD §2, after AutoPlay).
"""
