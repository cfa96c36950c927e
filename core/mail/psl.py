"""The Public Suffix List (shipped inside ``publicsuffixlist``: no download), parsed once per process.

Parsing it takes ~0.3 s (more on a loaded machine): the worker imports this module before forking
(``worker.main.PRELOAD``) so that its jobs inherit the parsed list instead of parsing it per email.
"""

from __future__ import annotations

from publicsuffixlist import PublicSuffixList

PSL = PublicSuffixList()
