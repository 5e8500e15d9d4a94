"""Messages to patients (portal links, reminders) and alerts to staff, through a persisted outbox.

See :mod:`.outbox` (the queue and the sender), :mod:`.sms` (the SMS adapter interface) and
:mod:`.alerts` (what is sent, to whom, when).
"""
