"""Clients for the outside platforms, over one shared HTTP policy (http.py)."""
