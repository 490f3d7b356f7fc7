"""kernel-gcs: a result store on Google Cloud Storage, in the layout of Celery's ``gs://``
backend."""
