"""Every action of the official SDK (alibabacloud_dm20151123 1.11.1, 81 DirectMail actions) and
what this API does with it: the table the app's routing is checked against at start-up and the
README's API table is generated from (`markdown_table`).

- implemented: served (sending.py, verifying.py, reading.py)
- managed in git: refused with Forbidden.ConfigAsCode (config_owned.py); change the config and apply
- not offered: cloud-commercial features with no self-hosted meaning; InvalidApi.NotFound
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

IMPLEMENTED, MANAGED, NOT_OFFERED = "implemented", "managed in git", "not offered"
I, M, N = IMPLEMENTED, MANAGED, NOT_OFFERED

# (group, action, status), in the order of the SDK reference's action list
ACTIONS: list[tuple[str, str, str]] = [
    ("Sending", "SingleSendMail", I),
    ("Sending", "BatchSendMail", I),
    ("Sending", "SendTestByTemplate", N),
    ("Domains", "CreateDomain", M),
    ("Domains", "QueryDomainByParam", I),
    ("Domains", "DescDomain", I),
    ("Domains", "CheckDomain", I),
    ("Domains", "DeleteDomain", M),
    ("Domains", "ChangeDomainDkimRecord", M),
    ("Domains", "ModifyPWByDomain", M),
    ("Sender addresses", "CreateMailAddress", M),
    ("Sender addresses", "QueryMailAddressByParam", I),
    ("Sender addresses", "ModifyMailAddress", M),
    ("Sender addresses", "DeleteMailAddress", M),
    ("Reply-to verification", "CheckReplyToMailAddress", I),
    ("Reply-to verification", "ApproveReplyMailAddress", I),
    ("Tags", "CreateTag", M),
    ("Tags", "QueryTagByParam", I),
    ("Tags", "ModifyTag", M),
    ("Tags", "DeleteTag", M),
    ("Recipient lists", "CreateReceiver", M),
    ("Recipient lists", "QueryReceiverByParam", I),
    ("Recipient lists", "SaveReceiverDetail", M),
    ("Recipient lists", "QueryReceiverDetail", I),
    ("Recipient lists", "DeleteReceiverDetail", M),
    ("Recipient lists", "DeleteReceiver", M),
    ("Templates", "CreateTemplate", M),
    ("Templates", "QueryTemplateByParam", I),
    ("Templates", "DescTemplate", N),
    ("Templates", "ModifyTemplate", M),
    ("Templates", "DeleteTemplate", M),
    ("Tasks, statistics, tracking", "QueryTaskByParam", I),
    ("Tasks, statistics, tracking", "SenderStatisticsByTagNameAndBatchID", N),
    ("Tasks, statistics, tracking", "SenderStatisticsDetailByParam", I),
    ("Tasks, statistics, tracking", "GetTrackList", N),
    ("Tasks, statistics, tracking", "GetTrackListByMailFromAndTagName", N),
    ("Tasks, statistics, tracking", "DescAccountSummary", N),
    ("Invalid addresses, suppression", "QueryInvalidAddress", N),
    ("Invalid addresses, suppression", "DeleteInvalidAddress", N),
    ("Invalid addresses, suppression", "CreateUserSuppression", N),
    ("Invalid addresses, suppression", "ListUserSuppression", N),
    ("Invalid addresses, suppression", "RemoveUserSuppression", N),
    ("Invalid addresses, suppression", "GetSuppressionListLevel", N),
    ("Invalid addresses, suppression", "SetSuppressionListLevel", N),
    ("Invalid addresses, suppression", "ListBlockSending", N),
    ("Invalid addresses, suppression", "UnblockSending", N),
    ("IP protection, IP filter", "GetIpProtection", N),
    ("IP protection, IP filter", "UpdateIpProtection", N),
    ("IP protection, IP filter", "AddIpfilter", M),
    ("IP protection, IP filter", "GetIpfilterList", N),
    ("IP protection, IP filter", "DeleteIpfilterByEdmId", M),
    ("Config sets", "ConfigSetCreate", N),
    ("Config sets", "ConfigSetDelete", N),
    ("Config sets", "ConfigSetDetail", N),
    ("Config sets", "ConfigSetList", N),
    ("Config sets", "ConfigSetUpdate", N),
    ("Config sets", "ConfigSetRelationFromAddress", N),
    ("Config sets", "ConfigSetCancelRelationFromAddress", N),
    ("Dedicated IPs", "DedicatedIpAutoRenewal", N),
    ("Dedicated IPs", "DedicatedIpChangeWarmupType", N),
    ("Dedicated IPs", "DedicatedIpList", N),
    ("Dedicated IPs", "DedicatedIpNonePoolList", N),
    ("Dedicated IPs", "DedicatedIpPoolCreate", N),
    ("Dedicated IPs", "DedicatedIpPoolDelete", N),
    ("Dedicated IPs", "DedicatedIpPoolList", N),
    ("Dedicated IPs", "DedicatedIpPoolUpdate", N),
    ("Dedicated IPs", "GetDedicatedIpWarmUpDetail", N),
    ("Dedicated IPs", "GetDedicatedIpWarmUpInfo", N),
    ("Address validation", "ValidateEmail", N),
    ("Address validation", "CheckDisposable", N),
    ("Address validation", "SendValidateFile", N),
    ("Address validation", "GetValidateFile", N),
    ("Address validation", "GetValidateFileStatus", N),
    ("Address validation", "ListValidateFile", N),
    ("Address validation", "DeleteValidateFile", N),
    ("Address validation", "GetValidationQuota", N),
    ("Account, Sendify", "GetUser", N),
    ("Account, Sendify", "UpdateUser", N),
    ("Account, Sendify", "GetSendifyInfo", N),
    ("Account, Sendify", "GetSendifyAutoLoginURL", N),
    ("Account, Sendify", "OpenSendifyTrialService", N),
]
STATUS: dict[str, str] = {action: status for _, action, status in ACTIONS}


class RoutingMismatch(RuntimeError):
    """The handler tables and ACTIONS disagree: a programming error, caught at start-up."""


def check_routing(handlers: Iterable[Mapping[str, object]], config_owned: Mapping[str, str]) -> None:
    """Raise RoutingMismatch unless the implemented rows are exactly the handled actions and the
    managed rows exactly the config-owned ones."""
    served = {a for table in handlers for a in table}
    want = {IMPLEMENTED: served, MANAGED: set(config_owned)}
    for status, actions in want.items():
        listed = {a for a, s in STATUS.items() if s == status}
        if listed != actions:
            raise RoutingMismatch(f"actions table says {status} for {sorted(listed - actions)}, the app for "
                                  f"{sorted(actions - listed)}")


def markdown_table(config_owned: Mapping[str, str]) -> str:
    """The README's table: every action, its status, and what to do instead where it is not served."""
    lines = ["| Group | Action | Status |", "|---|---|---|"]
    for group, action, status in ACTIONS:
        text = status
        if status == MANAGED:
            text = f"managed in git: {config_owned[action]}; `Forbidden.ConfigAsCode`"
        elif status == NOT_OFFERED:
            text = "not offered: `InvalidApi.NotFound`"
        lines.append(f"| {group} | `{action}` | {text} |")
    counts = {s: sum(st == s for _, _, st in ACTIONS) for s in (IMPLEMENTED, MANAGED, NOT_OFFERED)}
    lines.append("")
    lines.append(f"{len(ACTIONS)} actions: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # `python -m mailcore.ingress.api.actions`: the README's table
    from .config_owned import CONFIG_OWNED
    print(markdown_table(CONFIG_OWNED), end="")
