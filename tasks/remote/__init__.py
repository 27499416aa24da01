"""The only code that touches hosts: facts probe, transports (SSH, local), parallel runner.

Importing this package is cheap: Fabric and Paramiko are imported when a connection is made.
"""
