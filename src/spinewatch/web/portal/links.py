"""The web side of a portal answer: the registry records it, the web alerts the staff.

Links are made, found and used by :mod:`spinewatch.registry.services.portal` (the audited
write funnel); :func:`submit` adds the pain alert in the same transaction, so an answer and
its alert stand or fall together.
"""

from __future__ import annotations

from django.db import transaction

from spinewatch.registry.services import FollowUpResult, LinkState, use_link

__all__ = ["submit"]


def submit(
    *, token: str, vas: float, analgesic_use: str | None, base_url: str = ""
) -> tuple[LinkState, FollowUpResult | None]:
    """:func:`~spinewatch.registry.services.use_link`, then the alert of a worrying answer.

    ``base_url``: the site's address, for the link in the alert.
    """
    from spinewatch.web.notify.alerts import alert_portal_answer

    with transaction.atomic():
        state, result = use_link(token=token, vas=vas, analgesic_use=analgesic_use)
        if result is not None:
            alert_portal_answer(result.follow_up, base_url=base_url)
    return state, result
