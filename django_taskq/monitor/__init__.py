"""Live views of Redis in the admin: queues, workers, dead letters, dashboard."""
