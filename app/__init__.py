"""Parley: a chat room over TCP, with a desktop window and a terminal front end."""

__version__ = "0.1.0"
