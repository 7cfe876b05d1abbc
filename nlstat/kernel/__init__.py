"""Kernel constants, with kernel spellings, one module per kernel interface."""
