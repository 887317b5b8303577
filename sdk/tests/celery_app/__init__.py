"""A Celery app for the real-worker tests in test_celery.py (see celery_app.tasks)."""
