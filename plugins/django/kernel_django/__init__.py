"""kernel-django: Django integration for kernel (the django-db result store in
django-celery-results' tables, settings, autodiscovery, delay_on_commit)."""
