"""The agent runtime: commands in, typed event streams out.

:mod:`.tools` lists the engine operations that commands may call,
:mod:`.planner` maps plain English to tool calls offline, :mod:`.llm` sends them to an
OpenAI-compatible model instead when a ``model`` is chosen, and
:mod:`.runtime` runs the calls in persisted sessions and produces the events.
"""
