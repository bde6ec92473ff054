"""Root conftest. The harness's pytest plugin is registered by the ``pytest11`` entry point (pyproject.toml), so
it is active for the suites and for `pytester` runs alike; locust's auto-registered plugin is disabled in
``addopts`` (``-p no:locust``) because locust monkey-patches with gevent (DESIGN.md section 8)."""
