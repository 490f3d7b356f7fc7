"""kernel-yaml: the YAML serializer on PyYAML's safe loader (Celery's ``application/x-yaml``)."""
