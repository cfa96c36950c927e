"""Marking user-visible text of the domain for translation, without a dependency on the web layer.

``N_("...")`` returns its argument unchanged: ``pybabel extract`` (babel.cfg) collects it, and the dashboard
translates the value where it shows it (``|tr`` in templates, ``dashboard.i18n.translate`` in Python).
Only constant text can be found that way: a message built with an f-string reaches the reader in English.
"""

from __future__ import annotations


def N_(message: str) -> str:
    return message
