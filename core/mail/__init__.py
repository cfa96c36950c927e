"""Reading received email: pure functions over raw bytes, no database, no storage."""
