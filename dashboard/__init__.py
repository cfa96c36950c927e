"""The web process: the finance team's dashboard and the JSON API (Flask)."""
