"""Actions that would change state the config in git owns. The API refuses them, every one with
the same clear error, so nobody "fixes" production by hand and loses it at the next apply."""
from __future__ import annotations

from .errors import ApiError

# action -> what it would change (the config section that owns it)
CONFIG_OWNED: dict[str, str] = {
    "CreateDomain": "sending domains (domains)",
    "DeleteDomain": "sending domains (domains)",
    "ChangeDomainDkimRecord": "a domain's DKIM key (domains)",
    "ModifyPWByDomain": "SMTP passwords (senders)",
    "CreateMailAddress": "sender addresses (senders)",
    "ModifyMailAddress": "sender addresses (senders)",
    "DeleteMailAddress": "sender addresses (senders)",
    "CreateTag": "tags (tags)",
    "ModifyTag": "tags (tags)",
    "DeleteTag": "tags (tags)",
    "CreateReceiver": "recipient lists (recipient_lists)",
    "DeleteReceiver": "recipient lists (recipient_lists)",
    "SaveReceiverDetail": "recipient lists (recipient_lists and their files)",
    "DeleteReceiverDetail": "recipient lists (recipient_lists and their files)",
    "CreateTemplate": "templates (templates)",
    "ModifyTemplate": "templates (templates)",
    "DeleteTemplate": "templates (templates)",
    "AddIpfilter": "the IP allow-list (ip_allowlist)",
    "DeleteIpfilterByEdmId": "the IP allow-list (ip_allowlist)",
}


def refuse(action: str) -> ApiError:
    return ApiError("Forbidden.ConfigAsCode", Action=action, Entity=CONFIG_OWNED[action])
