# The configuration module of "First steps with Celery", section "Configuration", loaded with
# app.config_from_object("celeryconfig"); unchanged for kernel.
broker_url = "redis://localhost:6379/0"
result_backend = "redis://localhost:6379/0"

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "Europe/Oslo"
enable_utc = True

task_routes = {
    "tasks.add": "low-priority",
}

task_annotations = {
    "tasks.add": {"rate_limit": "10/m"},
}
