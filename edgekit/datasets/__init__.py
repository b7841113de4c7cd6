"""Offline dataset generators and loaders."""
