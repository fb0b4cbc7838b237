"""Form and model validators for schedule fields (referenced by migrations)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

from django_taskq.beat.cron import CronFieldError, validate_field


@deconstructible
class CronFieldValidator:
    """Check one cron field with croniter; the message names the field."""

    def __init__(self, field_name: str) -> None:
        self.field_name = field_name

    def __call__(self, value: str) -> None:
        try:
            validate_field(self.field_name, str(value))
        except CronFieldError as exc:
            raise ValidationError(
                _("%(field)s: %(value)r is not a valid cron field: %(reason)s"),
                code="invalid_cron_field",
                params={
                    "field": self.field_name.replace("_", " "),
                    "value": value,
                    "reason": str(exc).split(": ", 1)[-1],
                },
            ) from None

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, CronFieldValidator) and other.field_name == self.field_name

    def __hash__(self) -> int:
        return hash(self.field_name)


def validate_timezone(value: str) -> None:
    """Accept only IANA time zone names zoneinfo knows (e.g. Europe/Berlin)."""
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(value)r is not a known IANA time zone (for example Europe/Berlin or UTC)."),
            code="invalid_timezone",
            params={"value": value},
        ) from None
