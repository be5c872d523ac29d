"""Every error the HTTP API can answer, in one table, and the JSON body the SDK parses.

The official SDK turns a 4xx reply into `ClientException` and a 5xx into `ServerException`,
taking `.code` from the body's `Code` and `.status_code` from the HTTP status; callers branch on
those codes, so they are the documented DirectMail ones (DIRECTMAIL-API.md §5). A code with a
`{Parameter}` in it is a family (`MissingToAddress`, `MissingAccountName`, ...), as the real
gateway names the missing parameter in the code itself.

Submission refusals come from `mailcore.cleanup.submission.REFUSALS`; every api_code used there is a row here
with the same status and message (a test checks), so the API answers a refusal the same way
whichever side raised it.
"""
from __future__ import annotations

import uuid
from typing import NamedTuple

from mailcore.cleanup.submission import SubmitRefused

HOST_ID = "dm.aliyuncs.com"  # the real service's HostId; SDKs do not read it, humans recognise it


class ErrorSpec(NamedTuple):
    status: int
    message: str  # may hold {Parameter}, {Action}, ... filled from ApiError(**fields)
    when: str  # why we answer this, for readers of the table (not sent)


API_ERRORS: dict[str, ErrorSpec] = {
    # --- gateway: action, parameters, authentication (§5.1) ------------------------------------
    "InvalidApi.NotFound": ErrorSpec(404, "Specified api is not found, please check your url and method.",
                                     "unknown action"),
    "InvalidVersion": ErrorSpec(400, "Specified parameter Version is not valid.", "Version other than 2015-11-23"),
    "UnsupportedHTTPMethod": ErrorSpec(400, "This http method is not supported.", "neither GET nor POST"),
    "Missing{Parameter}": ErrorSpec(400, "{Parameter} is mandatory for this action.", "a required parameter is absent"),
    "InvalidParameter": ErrorSpec(400, "Specified parameter {Parameter} is not valid.", "a malformed parameter value"),
    "InvalidAccessKeyId.NotFound": ErrorSpec(404, "Specified access key is not found.", "unknown AccessKeyId"),
    "InvalidAccessKeyId.Inactive": ErrorSpec(400, "Specified access key is disabled.", "api key with enabled: false"),
    "InvalidTimeStamp.Format": ErrorSpec(400, "Specified time stamp or date value is not well formatted.",
                                         "Timestamp / x-acs-date unparsable"),
    "InvalidTimeStamp.Expired": ErrorSpec(400, "Specified time stamp or date value is expired.",
                                          "clock skew over the window (15 min)"),
    "SignatureNonceUsed": ErrorSpec(400, "Specified signature nonce was used already.", "a replayed request"),
    "IncompleteSignature": ErrorSpec(400, "The request signature does not conform to Aliyun standards.",
                                     "malformed Authorization, unsigned required headers, no signature"),
    "InvalidSignatureMethod": ErrorSpec(400, "Specified signature method is not valid.",
                                        "not ACS3-HMAC-SHA256 / HMAC-SHA1"),
    "SignatureDoesNotMatch": ErrorSpec(400, "Specified signature is not matched with our calculation.",
                                       "wrong secret, altered request"),
    "Forbidden": ErrorSpec(403, "The user is not authorized to operate on the specified resource.",
                           "client IP outside the allow-list (R28), sender of another user"),
    "Forbidden.ConfigAsCode": ErrorSpec(400, "{Action} would change {Entity}, which is managed in git: change config/ "
                                             "and run `invoke plan` then `invoke apply`.",
                                        "a create/modify/delete of config-owned state"),
    "InternalError": ErrorSpec(500, "The request processing has failed due to some unknown error.",
                               "a bug: logged with its traceback"),
    "ServiceUnavailable": ErrorSpec(503, "The request has failed due to a temporary failure of the server.",
                                    "the store cannot be reached"),
    "ServiceUnavailable.Submission": ErrorSpec(503, "The mail submission service is temporarily unavailable; the mail "
                                                    "was not accepted. Retry later.",
                                               "the cleanup process is down or restarting"),
    "IdempotentParameterMismatch": ErrorSpec(400, "The request uses the same client token as a previous, but "
                                                  "non-identical request.",
                                             "a ClientToken reused within 24 h for a different send"),
    # --- DirectMail sending and resources (§5.2) ------------------------------------------------
    "InvalidMailAddress.NotFound": ErrorSpec(404, "The specified mailAddress does not exist.", "AccountName unknown"),
    "InvalidMailAddressStatus.Malformed": ErrorSpec(400, "The specified mailAddress status is wrongly formed.",
                                                    "sender not active yet (R15)"),
    "InvalidMailAddressSendType.Malformed": ErrorSpec(400, "The specified mailAddress sendType is wrongly formed.",
                                                      "batch send from a trigger address (R12)"),
    "InvalidMailAddressDomain.Malformed": ErrorSpec(400, "The specified mailAddress domain does not exist.",
                                                    "sender domain not verified (R9)"),
    "InvalidToAddress": ErrorSpec(400, "The specified toAddress is wrongly formed.",
                                  "ToAddress syntax, more than 100 addresses"),
    "InvalidToAddress.Spam": ErrorSpec(400, "Sendmail rejected by invalid address.",
                                       "recipient in the invalid-address base (R37)"),
    "InvalidBody": ErrorSpec(400, "The specified textBody or htmlBody is wrongly formed.", "no body, body too large"),
    "InvalidSubject.Malformed": ErrorSpec(400, "The specified subject is wrongly formed.", "subject over 256 characters"),
    "InvalidFromAlias.Malformed": ErrorSpec(400, "The specified fromAlias is wrongly formed.",
                                            "FromAlias over 15 characters"),
    "InvalidSendMail.Spam": ErrorSpec(400, "Sendmail rejected by spam filter.", "quota, content, account state"),
    "InvalidTemplateName.Malformed": ErrorSpec(400, "The specified template name is wrongly formed.",
                                               "TemplateName over 30 characters"),
    "InvalidTemplate.NotFound": ErrorSpec(404, "The specified template does not exist.", "unknown or unapproved template"),
    "InvalidReceiverName.Malformed": ErrorSpec(400, "The specified receiver name is wrongly formed.",
                                               "BatchSendMail without ReceiversName or Receivers"),
    "InvalidReceiver.NotFound": ErrorSpec(404, "The specified receiver does not exist.", "unknown recipient list"),
    "InvalidTag.NotFound": ErrorSpec(404, "The specified tag does not exist.", "unknown TagName"),
    "InvalidDomainId.NotFound": ErrorSpec(404, "The specified domain does not exist.", "DescDomain/CheckDomain of an unknown id"),
    # --- reply-to verification (R13, mailcore.ingress.api.verifying) --------------------------------------
    "InvalidReplyAddress.NotFound": ErrorSpec(404, "The specified mailAddress has no reply address.",
                                              "CheckReplyToMailAddress for a sender without reply_to"),
    "Throttling.User": ErrorSpec(400, "Request was denied due to user flow control.",
                                 "a second verification mail within 10 minutes"),
    "InvalidTicket": ErrorSpec(400, "The specified ticket is not valid.",
                               "ApproveReplyMailAddress with an unknown, used or expired ticket"),
}


def new_request_id() -> str:
    """Upper-case UUID, the real service's RequestId format."""
    return str(uuid.uuid4()).upper()


class ApiError(Exception):
    """An answer other than success. `code` is a key of API_ERRORS (a `{Parameter}` family
    is named by its template and filled from `fields`); `detail` is appended to the message."""

    def __init__(self, code: str, detail: str = "", *, message: str | None = None, **fields: str):
        if code not in API_ERRORS:
            raise ValueError(f"API error code {code!r} is not in API_ERRORS")
        spec = API_ERRORS[code]
        self.template = code
        self.code = code.format(**fields)
        self.status = spec.status
        self.message = (spec.message.format(**fields) if message is None else message) + (f" {detail}" if detail else "")
        super().__init__(f"{self.code}: {self.message}")

    @classmethod
    def missing(cls, name: str) -> ApiError:
        return cls("Missing{Parameter}", Parameter=name)

    @classmethod
    def invalid(cls, name: str, detail: str = "") -> ApiError:
        return cls("InvalidParameter", detail, Parameter=name)

    @classmethod
    def from_refusal(cls, refused: SubmitRefused) -> ApiError:
        refusal = refused.refusal
        # the refusal table is the authority for what a refusal looks like on the wire
        err = cls(refusal.api_code, refused.detail, message=refusal.api_message)
        err.status = refusal.http_status
        return err

    def body(self, request_id: str) -> dict:
        return {"RequestId": request_id, "HostId": HOST_ID, "Code": self.code, "Message": self.message}
