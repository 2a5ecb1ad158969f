"""The load benchmark: seed a school with linked parents, serve it with gunicorn, drive it with locust."""
