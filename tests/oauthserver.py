"""The tests' OAuth2 authorization server: the one ``inbox start`` also runs, in dashboard/devoauth.py
(kept there so that the embedded demo can offer "Connect Gmail" without Google; no copy here)."""

from dashboard.devoauth import CLIENT_ID, CLIENT_SECRET, Behaviour, Code, OAuthTestServer, s256

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "Behaviour", "Code", "OAuthTestServer", "s256"]
