"""kernel-msgpack: the msgpack serializer (Celery's ``application/x-msgpack``)."""
