"""HTTP endpoints for schedulers and webhooks: run queued tasks, read states, purge history.

For hosts where no worker stays up (serverless containers woken by a
scheduler's HTTP call), and for projects moving from django-tasks-redis,
whose endpoint paths these keep. urls.py lists them, auth.py says who may
call them, burst.py runs tasks on a burst worker for a request.
"""
