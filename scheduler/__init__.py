"""After-school allocation core: domain, JSON formats, solver, validation, explanations, baselines.

Pure Python plus OR-Tools: nothing here imports Flask, SQLAlchemy or `webapp` (a test enforces it).
"""
