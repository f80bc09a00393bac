"""The operator's files: settings, trunks, tariffs, and the YAML positions their errors cite.

``settings`` reads config/callserver.yaml with its environment and flag overrides, ``trunks``
config/trunks.yaml, ``tariffs`` (with ``tariff_file``) config/tariffs.yaml; ``positions`` finds
the line of a field so every error reads ``file:line: field: message``.
"""
