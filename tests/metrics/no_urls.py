"""A URLconf without django_taskq's URLs (for the system check test)."""

urlpatterns: list[object] = []
