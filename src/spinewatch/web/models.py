"""Models of the ``web`` app, defined in each area's own module (one import line per area)."""

from spinewatch.web.notify.models import *  # noqa: F403
from spinewatch.web.pages.models import *  # noqa: F403
from spinewatch.web.portal.models import *  # noqa: F403
from spinewatch.web.scans.models import *  # noqa: F403
