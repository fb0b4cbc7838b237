"""Task history: TaskRecord rows in the user's database, written by the recorder (DESIGN 16)."""
