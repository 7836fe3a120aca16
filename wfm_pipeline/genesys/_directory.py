"""The org's directory, parsed: divisions, users, business and management units, activity codes, presence
definitions, data retention. One small function per SDK model (payload -> value type), and the paging.

Every field is read through ``ResponseBody``, so a missing or mistyped value is an ``UnexpectedResponseError``
naming the endpoint, the entity and the field. An entity of a listing is read as its own ``ResponseBody``
whose ``where`` also names the entity ("GET /api/v2/users: user <id>").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wfm_pipeline import wire
from wfm_pipeline.genesys._models import (
    ActivityCode,
    BusinessUnit,
    Division,
    ManagementUnitSettings,
    PresenceDefinition,
    User,
)
from wfm_pipeline.genesys._responses import ResponseBody

# Divisions are few (tens): 25, the default page size of Genesys listings, is never refused.
DIVISIONS_PAGE_SIZE = 25
# PresenceDefinition.name: the label in this locale, else the definition's own name.
PRESENCE_LABEL_LOCALE = "en_US"


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


Identified = TypeVar("Identified", bound=_HasId)


# --- paging -----------------------------------------------------------------------------------------------
def pages(fetch_page: Callable[[Mapping[str, int]], ResponseBody], page_size: int) -> Iterator[ResponseBody]:
    """Every page of a pageSize/pageNumber listing: ``fetch_page`` gets those two parameters; pages are
    followed up to the ``pageCount`` of the latest page (it grows when entities are added meanwhile)."""
    page_number = 1
    while True:
        page = fetch_page({"pageSize": page_size, "pageNumber": page_number})
        yield page
        if page_number >= _page_count(page):
            return
        page_number += 1


def _page_count(page: ResponseBody) -> int:
    count = page.value("pageCount")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise page.error(f"field pageCount is {count!r}, expected a count of pages")
    return count


def unique_by_id(models: Iterable[Identified]) -> list[Identified]:
    """One model per id, the last read winning (offset pages of a changing listing can repeat an entity;
    presence definitions come from two listings)."""
    return list({model.id: model for model in models}.values())


# --- typed optional fields (absent or null, or inside an absent object -> None) --------------------------
def _optional(body: ResponseBody, *path: str) -> Any:
    """The value at ``path``, None when it or an object on the way is absent (``manager`` of a user
    without one); a value on the way that is not an object is still an error."""
    if any(body.value(*path[:depth]) is None for depth in range(1, len(path))):
        return None
    return body.value(*path)


def _optional_text(body: ResponseBody, *path: str) -> str | None:
    value = _optional(body, *path)
    if value is not None and not isinstance(value, str):
        raise body.error(f"field {'.'.join(path)} is {value!r}, expected a string")
    return value


def _optional_int(body: ResponseBody, *path: str) -> int | None:
    value = _optional(body, *path)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise body.error(f"field {'.'.join(path)} is {value!r}, expected an integer")
    return value


def _optional_bool(body: ResponseBody, *path: str) -> bool | None:
    value = _optional(body, *path)
    if value is not None and not isinstance(value, bool):
        raise body.error(f"field {'.'.join(path)} is {value!r}, expected true or false")
    return value


def _optional_identifier(body: ResponseBody, *path: str) -> str | None:
    return None if _optional(body, *path) is None else body.identifier(*path)


def _one_of(body: ResponseBody, field: str, allowed: tuple[str, ...]) -> str:
    """An enum field: a value not in ``allowed`` (wire.py) is an error; ``body.where`` names the entity."""
    value = body.text(field)
    if value not in allowed:
        raise body.error(f"field {field} is {value!r}, expected one of {', '.join(allowed)}")
    return value


def _entity(listing: ResponseBody, entity: dict[str, Any], described: str) -> ResponseBody:
    """One entity of ``listing``, read on its own; errors name it after the endpoint."""
    return replace(listing, data=entity, where=f"{listing.where}: {described}")


def checked_time_zone(source: ResponseBody, unit_id: str, time_zone: object) -> str:
    """The management unit's IANA zone: without it local days cannot be cut, so absence is an error, never
    UTC."""
    if not isinstance(time_zone, str) or not time_zone:
        raise source.error(f"management unit {unit_id} has no timeZone")
    return _iana_zone(source, f"management unit {unit_id}", time_zone)


def _iana_zone(source: ResponseBody, what: str, time_zone: str) -> str:
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise source.error(f"{what} has timeZone {time_zone!r}, not an IANA zone") from exc
    return time_zone


# --- one function per SDK model ---------------------------------------------------------------------------
def division_of(listing: ResponseBody, entity: dict[str, Any]) -> Division:
    """An ``AuthzDivision`` of an ``AuthzDivisionEntityListing``."""
    division_id = listing.identifier("id", item=entity)
    body = _entity(listing, entity, f"division {division_id}")
    return Division(id=division_id, name=body.text("name"))


def user_of(listing: ResponseBody, entity: dict[str, Any]) -> User:
    """A ``User`` of a ``UserEntityListing``; ``manager`` is a user reference (its id is taken)."""
    user_id = listing.identifier("id", item=entity)
    body = _entity(listing, entity, f"user {user_id}")
    return User(
        id=user_id,
        name=body.text("name"),
        email=_optional_text(body, "email"),
        state=_one_of(body, "state", wire.USER_STATES),
        division_id=_optional_identifier(body, "division", "id"),
        department=_optional_text(body, "department"),
        title=_optional_text(body, "title"),
        manager_id=_optional_identifier(body, "manager", "id"),
    )


def business_unit_of(unit: ResponseBody) -> BusinessUnit:
    """A ``BusinessUnitResponse`` read with ``expand=settings`` (``BusinessUnitSettingsResponse``)."""
    unit_id = unit.identifier("id")
    time_zone = _optional_text(unit, "settings", "timeZone")
    return BusinessUnit(
        id=unit_id,
        name=unit.text("name"),
        division_id=_optional_identifier(unit, "division", "id"),
        time_zone=None if time_zone is None else _iana_zone(unit, f"business unit {unit_id}", time_zone),
        start_day_of_week=_optional_text(unit, "settings", "startDayOfWeek"),
    )


def management_unit_settings_of(unit: ResponseBody) -> ManagementUnitSettings:
    """A ``ManagementUnit`` read with ``expand=settings`` (``settings.adherence``: ``AdherenceSettings``)."""
    unit_id = unit.identifier("id")
    adherence = ("settings", "adherence")
    return ManagementUnitSettings(
        id=unit_id,
        name=unit.text("name"),
        business_unit_id=_optional_identifier(unit, "businessUnit", "id"),
        time_zone=checked_time_zone(unit, unit_id, unit.value("timeZone")),
        start_day_of_week=_optional_text(unit, "startDayOfWeek"),
        division_id=_optional_identifier(unit, "division", "id"),
        adherence_target_percent=_optional_int(unit, *adherence, "adherenceTargetPercent"),
        adherence_exception_threshold_seconds=_optional_int(
            unit, *adherence, "adherenceExceptionThresholdSeconds"
        ),
        severe_alert_threshold_minutes=_optional_int(unit, *adherence, "severeAlertThresholdMinutes"),
        non_on_queue_activities_equivalent=_optional_bool(unit, *adherence, "nonOnQueueActivitiesEquivalent"),
        track_on_queue_activity=_optional_bool(unit, *adherence, "trackOnQueueActivity"),
    )


def activity_codes_download_url(listing: ResponseBody) -> str | None:
    """A ``BusinessUnitActivityCodeListing`` sent through the download service carries only ``downloadUrl``
    (absolute, presigned); the same listing is served there."""
    url = _optional_text(listing, "downloadUrl")
    if url is not None and "://" not in url:
        raise listing.error(f"field downloadUrl is {url!r}, expected an absolute URL")
    return url


def activity_code_of(listing: ResponseBody, business_unit_id: str, entity: dict[str, Any]) -> ActivityCode:
    """A ``BusinessUnitActivityCode``; its id is checked as text only (default codes have ids like "0")."""
    code_id = _entity(listing, entity, "an activity code").text("id")
    body = _entity(listing, entity, f"activity code {code_id}")
    return ActivityCode(
        business_unit_id=business_unit_id,
        id=code_id,
        name=body.text("name"),
        category=_one_of(body, "category", wire.ACTIVITY_CATEGORIES),
        active=_optional_bool(body, "active"),
        default_code=_optional_bool(body, "defaultCode"),
        length_in_minutes=_optional_int(body, "lengthInMinutes"),
        counts_as_paid_time=_optional_bool(body, "countsAsPaidTime"),
        counts_as_work_time=_optional_bool(body, "countsAsWorkTime"),
        secondary_presence_ids=tuple(
            body.identifier("id", item=presence) for presence in body.items("secondaryPresences")
        ),
    )


def presence_definition_of(
    listing: ResponseBody, entity: dict[str, Any], listed_as_deactivated: bool
) -> PresenceDefinition:
    """An ``OrganizationPresenceDefinition``; ``deactivated`` as served, else as the listing was asked."""
    presence_id = listing.identifier("id", item=entity)
    body = _entity(listing, entity, f"presence definition {presence_id}")
    label = _optional_text(body, "languageLabels", PRESENCE_LABEL_LOCALE)
    deactivated = _optional_bool(body, "deactivated")
    return PresenceDefinition(
        id=presence_id,
        name=label or body.text("name"),
        system_presence=_one_of(body, "systemPresence", wire.WFM_SYSTEM_PRESENCES),
        type=_optional_text(body, "type"),
        deactivated=listed_as_deactivated if deactivated is None else deactivated,
    )


def retention_days_of(settings: ResponseBody) -> int:
    """``AnalyticsDataRetentionResponse.retentionDays``."""
    days = _optional_int(settings, "retentionDays")
    if days is None or days < 1:
        raise settings.error(f"field retentionDays is {days!r}, expected a positive number of days")
    return days
