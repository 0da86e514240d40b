"""Callback channels, registered by type name (see :mod:`notifier.channels.base`)."""

from notifier.channels import apprise, email, webhook
from notifier.channels.base import REGISTRY, CallbackSettings, Channel, Outcome, create

__all__ = [
    "REGISTRY",
    "CallbackSettings",
    "Channel",
    "Outcome",
    "apprise",
    "create",
    "email",
    "webhook",
]
