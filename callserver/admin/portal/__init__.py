"""The web portal: page shells and static files (HTML, CSS, plain JavaScript modules) served by
the admin server. The shells hold no data and need no token; the pages ask for the token, keep
it in the browser's sessionStorage and read everything from the JSON API with it."""

from callserver.admin.portal.resource import PAGES, PUBLIC_PATHS, PortalResource, is_public

__all__ = ["PAGES", "PUBLIC_PATHS", "PortalResource", "is_public"]
