"""Shared library of the MIF maintenance suite."""
