"""The Discord adapter: slash commands, buttons, message rendering and delivery of job events.

Importing the bot never imports torch or diffusers.
"""
