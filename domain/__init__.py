"""The job domain: prompt language, job specs, model catalog, plans and costs.

Nothing here imports discord.py, torch or SQLAlchemy; adapters (``bot``, ``inference``, ``db``)
translate to and from these types.
"""
