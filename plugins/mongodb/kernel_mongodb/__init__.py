"""kernel-mongodb: kernel's result store on MongoDB, in Celery's documents."""
