"""The Django view Prometheus scrapes: ``django_taskq.urls``, route name ``taskq-metrics``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from django_taskq.metrics.exposition import CHALLENGE, authorized, render


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Every django_taskq metric in Prometheus's text format, read from Redis now.

    With TASKQ_METRICS_TOKEN set, a request without ``Authorization: Bearer
    <token>`` gets 401 and a ``WWW-Authenticate`` challenge. Without
    prometheus_client it raises ImproperlyConfigured naming the ``[metrics]``
    extra (after the token check, so a stranger learns nothing).
    """
    if not authorized(request.headers.get("Authorization")):
        response = HttpResponse(
            "401 Unauthorized: send Authorization: Bearer <TASKQ_METRICS_TOKEN>\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = CHALLENGE
        return response
    output, content_type = render(request.headers.get("Accept"))
    return HttpResponse(output, content_type=content_type)
