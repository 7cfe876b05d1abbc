"""Netlink backends: requests built from a Query, answers decoded with fixed struct layouts."""
