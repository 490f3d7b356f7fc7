"""kernel-s3: a result store on Amazon S3 (or any S3-compatible service), in the layout of
Celery's ``s3://`` backend."""
