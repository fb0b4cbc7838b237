from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("taskq/", include("django_taskq.urls")),
    path("tasks/", include("django_taskq.endpoints.urls")),
]
