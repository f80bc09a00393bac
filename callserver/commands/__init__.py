"""The command-line commands that work on the operator's files without a running server:
``callserver check`` (``check``) and ``callserver rate`` (``rate``).
"""
