"""The consumer views: `.../locations/{loc}/sharedGalleries` and `.../locations/{loc}/communityGalleries`.

A consumer reads an owner's gallery, its definitions and its versions without any role on the owner's resources,
through ids that name no owner resource group (domain.sharing.View builds the bodies: nothing of the owner beyond
what Azure shows). A gallery not shared with the consumer answers as if it did not exist. Versions are listed where
they are usable (replicated to the location); a community listing also leaves out versions excluded from latest or
past their end of life, which stay readable by name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from ..domain import errors
from ..domain import sharing as rules
from ..domain.ids import normalize_location
from ..domain.validate import Body
from . import sharing
from .ports import ResourceRow, Transaction
from .resources import Page, Resources, check_subscription


class ConsumerViews:
    def __init__(self, resources: Resources):
        self.resources = resources

    def _location(self, location: str) -> str:
        loc = normalize_location(location)
        if loc not in self.resources.settings.regions:
            raise errors.InvalidLocation(
                f"The location '{location}' is not available; configured regions are "
                f"{', '.join(self.resources.settings.regions)}.",
                "location",
            )
        return loc

    def _consumer(self, subscription: str) -> sharing.Consumer:
        check_subscription(subscription)
        return sharing.Consumer.of(subscription, self.resources.subscription_tenants)

    @staticmethod
    def _page(items: list[Body], after: int, limit: int) -> Page:
        limit = max(1, min(limit, 1000))
        chunk = items[after : after + limit]
        return Page(chunk, after + limit if after + limit < len(items) else None)

    def _gallery(
        self, tx: Transaction, subscription: str, community: bool, name: str, shared_to: str | None = None
    ) -> ResourceRow:
        if community:
            check_subscription(subscription)
            return sharing.community_gallery(tx, name)
        return sharing.shared_gallery(tx, self._consumer(subscription), name, shared_to)

    # -- galleries ------------------------------------------------------------------------------------------------
    def list_shared(self, subscription: str, location: str, shared_to: str | None, after: int, limit: int) -> Page:
        loc = self._location(location)
        shared_to = rules.check_shared_to(shared_to)
        consumer = self._consumer(subscription)
        with self.resources.db.read() as tx:
            rows = sharing.shared_galleries(tx, consumer, shared_to)
        items = [rules.View(False, _unique_name(r), loc).gallery(r.body) for r in rows]
        return self._page(items, after, limit)

    def get_gallery(self, subscription: str, location: str, community: bool, name: str) -> Body:
        loc = self._location(location)
        with self.resources.db.read() as tx:
            row = self._gallery(tx, subscription, community, name)
        return rules.View(community, _view_name(row, community, name), loc).gallery(row.body)

    # -- definitions ----------------------------------------------------------------------------------------------
    def list_images(
        self,
        subscription: str,
        location: str,
        community: bool,
        name: str,
        shared_to: str | None,
        after: int,
        limit: int,
    ) -> Page:
        loc = self._location(location)
        shared_to = rules.check_shared_to(shared_to)
        with self.resources.db.read() as tx:
            row = self._gallery(tx, subscription, community, name, shared_to)
            view = rules.View(community, _view_name(row, community, name), loc)
            items = [view.image(d.body) for d in sharing.definitions_of(tx, row)]
        return self._page(items, after, limit)

    def get_image(self, subscription: str, location: str, community: bool, name: str, image: str) -> Body:
        loc = self._location(location)
        with self.resources.db.read() as tx:
            row = self._gallery(tx, subscription, community, name)
            view = rules.View(community, _view_name(row, community, name), loc)
            definition = sharing.definition_in(tx, row, image, f"{view.root}/Images/{image}")
            return view.image(definition.body)

    # -- versions -------------------------------------------------------------------------------------------------
    def list_versions(
        self,
        subscription: str,
        location: str,
        community: bool,
        name: str,
        image: str,
        shared_to: str | None,
        after: int,
        limit: int,
    ) -> Page:
        loc = self._location(location)
        shared_to = rules.check_shared_to(shared_to)
        now = datetime.fromtimestamp(self.resources.clock(), UTC)
        listed: Callable[[ResourceRow], bool] = (
            (lambda r: rules.listed_in_community(r.body, now)) if community else (lambda r: True)
        )
        with self.resources.db.read() as tx:
            row = self._gallery(tx, subscription, community, name, shared_to)
            view = rules.View(community, _view_name(row, community, name), loc)
            definition = sharing.definition_in(tx, row, image, f"{view.root}/Images/{image}")
            items = [
                view.version(definition.body["name"], v.body)
                for v in sharing.versions_of(tx, definition, loc)
                if listed(v)
            ]
        return self._page(items, after, limit)

    def get_version(
        self, subscription: str, location: str, community: bool, name: str, image: str, version: str
    ) -> Body:
        loc = self._location(location)
        with self.resources.db.read() as tx:
            row = self._gallery(tx, subscription, community, name)
            view = rules.View(community, _view_name(row, community, name), loc)
            definition = sharing.definition_in(tx, row, image, f"{view.root}/Images/{image}")
            shown = f"{view.root}/Images/{definition.body['name']}/Versions/{version}"
            found = sharing.version_in(tx, definition, version, loc, shown)
            return view.version(definition.body["name"], found.body)


def _unique_name(row: ResourceRow) -> str:
    return str(((row.body.get("properties") or {}).get("identifier") or {}).get("uniqueName"))


def _view_name(row: ResourceRow, community: bool, asked: str) -> str:
    """The gallery's name in the view: its unique name, or the public name as the gallery spells it."""
    if not community:
        return _unique_name(row)
    return next((n for n in rules.public_names(row.body) if n.lower() == asked.lower()), asked)
