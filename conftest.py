"""Root conftest: keeps locust's auto-registered pytest plugin out (DESIGN.md section 8)."""
