"""Local state in one SQLite database: connection profiles (never secrets), cached opt-out
lists with their sync watermark, the submission journal and the run history."""
