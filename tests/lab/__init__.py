"""kubefab's test lab: many Linux hosts on one machine (see tests/lab/README.md).

Test infrastructure only, never part of the shipped tool.
"""
