"""The sans-IO core: plain data and pure functions, no trio and no IO (a test checks the folder).

Everything here is tested without an event loop; the runtime executes what the core decides.
"""
