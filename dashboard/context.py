"""The running app's shared objects, as every view, API route and hand-off reaches them: its settings, its
file storage and its RQ queues (made once per app). Separate from ``dashboard.app`` (which builds the app and
registers the views) so that the views can use them without importing the module that imports them."""

from __future__ import annotations

from flask import current_app
from rq import Queue

from core.config import Settings
from core.files.storage import FileStorage
from worker.policy import BULK
from worker.queue import get_queue


def settings() -> Settings:
    return current_app.extensions["inbox.settings"]


def storage() -> FileStorage:
    return current_app.extensions["inbox.storage"]


def queue() -> Queue:
    """The app's RQ queue: one Redis client (and connection pool) shared by every request and thread.

    Made at first use, so that a Redis URL that cannot be used fails the enqueue (which callers handle:
    the sweep queues later), not the start of the dashboard.
    """
    found = current_app.extensions.get("inbox.queue")
    if found is None:
        found = current_app.extensions.setdefault("inbox.queue", get_queue(settings()))
    return found


def bulk_queue() -> Queue:
    """The queue of uploads, imports and retries (``worker.policy``), on the same Redis client as ``queue()``."""
    found = current_app.extensions.get("inbox.bulk_queue")
    if found is None:
        found = current_app.extensions.setdefault("inbox.bulk_queue",
                                                  get_queue(settings(), queue().connection, BULK))
    return found
