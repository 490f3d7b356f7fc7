"""kernel-sqlalchemy: kernel's result store on SQL databases, in Celery's tables."""
