"""Models of the ``web`` app, defined in each area's own module (one import line per area).

The SINS assessment and the portal link moved to the registry app (``registry.models_sins``,
``registry.models_portal``): they are clinical records, written through the registry services.
"""

from spinewatch.web.notify.models import *  # noqa: F403
from spinewatch.web.scans.models import *  # noqa: F403
