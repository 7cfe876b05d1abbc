"""Formatters: records and the query in, netstat's exact text out; no kernel or /proc access."""
