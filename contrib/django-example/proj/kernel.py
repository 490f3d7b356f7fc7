"""The project's kernel App: ``kernel worker -A proj`` runs its tasks."""

import os

from kernel import App

# Before the settings are read: workers started with -A proj find them.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")

app = App("proj")

# Every KERNEL_* setting in proj/settings.py: KERNEL_BROKER_URL is broker_url, and so on.
app.config_from_object("django.conf:settings", namespace="KERNEL")

# Import each installed app's tasks.py when a worker starts.
app.autodiscover_tasks()
