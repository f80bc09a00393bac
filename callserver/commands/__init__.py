"""What the ``callserver`` commands do besides running the server: ``check``, ``rate``,
``passwd``, ``subscribers``, and the call centre's ``recordings``, ``stats``, ``agents`` and
``campaign`` (their command line in ``centre_cli``).
"""
