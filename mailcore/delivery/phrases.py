"""Receiver phrases: reason -> the wordings receivers use for it, as data (issue 13).

The patterns were written for this project from public descriptions of what receivers send:
Sisimai's reason taxonomy and its per-reason phrase lists (github.com/sisimai/p5-sisimai,
lib/Sisimai/Reason/*.pm and lib/Sisimai/Rhost/*.pm, BSD-2-Clause; read, not copied: the rules
below are grouped and generalised, not the lists), and the bounce texts the big receivers
document: Gmail (support.google.com/a/answer/3726730), Outlook.com / Exchange Online (the NDR
reference on learn.microsoft.com), Yahoo (senders.yahooinc.com/smtp-error-codes), Apple iCloud
(support.apple.com/102322), QQ (service.mail.qq.com help 20022), NetEase 163/126
(help.163.com), Mail.ru (help.mail.ru/mail/postmaster), Yandex, Comcast (postmaster.comcast.net),
Mimecast, Proofpoint, Barracuda, Orange/La Poste (the OFR/LPN codes).

Each pattern is a regular expression, matched case-insensitively against the reply with runs of
whitespace as one space. A reason is a key of :data:`mailcore.delivery.reasons.REASONS`.

:data:`DECISIVE` is checked before the enhanced status code: DirectMail's own texts (the guide's
423/524/526/427/552/559 wordings, whatever code carries them) and wordings a big receiver
documents with a code that means something else (Gmail's per-recipient rate limit is sent as
5.2.1 "mailbox disabled"; DMARC/SPF rejections as 5.7.1). :data:`PHRASES` is checked after it,
in order: the first reason with a matching pattern wins, so the more specific reasons come first
(authentication before spam: Gmail's DMARC reply says "to protect our users from spam").
"""
from __future__ import annotations

import re

_ADDR = r"(?:user|mailbox|recipient|address|account|e-?mail address|destination|addressee|person)"

DECISIVE: tuple[tuple[str, tuple[str, ...]], ...] = (
    # DirectMail's own delivery-side texts (the guide's 423, 524, 526, 427, 552, 559, 554, 557, 556)
    ("dm-dns-nxdomain", (r"host not found by dns resolve",)),
    ("dm-dns-nodata", (r"no data by dns resolve",)),
    ("dm-dns-error", (r"\bdns resolve error",)),
    ("dm-unreachable", (r"socks connect to unreachable host",)),
    ("dm-invalid-rcpt", (r"^invalid rcptto\b",)),
    ("dm-quota", (r"(?:monthly|daily) sending quota exceeded", r"not enough sending quota")),
    ("dm-spam", (r"reject by content spam",)),
    ("dm-size", (r"length of data content is achieved the maximum threshold",)),
    ("dm-rcpts", (r"number of rcpts is over size",)),
    # a receiver's own words that overrule the enhanced code it sends with them
    ("rcptfreq", (r"receiving (?:mail|messages|e-?mail) (?:at a rate|too (?:fast|quickly))",
                  r"(?:mailbox|recipient|user) (?:has )?received too (?:much|many) (?:e-?mail|mail|messages)",
                  r"recipient is receiving (?:mail|messages) too", r"too many messages (?:for|to) this (?:recipient|user|mailbox)",
                  r"recipient (?:has )?exceeded (?:their|its|the) (?:message|receiving) (?:rate )?limit")),
    ("freq", (r"(?:daily|hourly)(?: [\w-]+){0,3} (?:quota|limit) exceeded", r"sending limit exceeded",
              r"too many recipients (?:this|per|an?|in the last) (?:hour|day|minute)")),
    # a failed lookup or a malformed header is not an authentication verdict, whatever record it names
    ("system", (r"(?:dmarc|spf|dkim) (?:dns |record |policy )?(?:lookup|query) (?:failure|failed|error)",)),
    ("content", (r"duplicate (?:\S+ )?header", r"header (?:is |was )?(?:duplicated|malformed)")),
    ("auth", (r"\bdmarc\b", r"\bspf\b(?!\.pobox)", r"\bdkim\b", r"sender policy framework",
              r"(?:not|fails? to) (?:pass|meet) (?:the )?(?:required )?authentication",
              r"authentication (?:checks|requirements|level)", r"sender is unauthenticated",
              r"unauthenticated (?:e-?mail|mail|message)s? (?:from|is|are)",
              r"does not have authentication information", r"spf\.pobox\.com", r"anti-?spoof")),
    # a reply about the sender or the client (its address, domain or HELO name) says nothing about the recipient
    ("sender", (r"sender (?:verif\w*|address rejected|domain (?:must|does not|doesn't)|address domain)",
                r"envelope sender", r"domain of sender")),
    ("syntax", (r"need (?:a )?fully-?qualified (?:e-?mail )?address",)),
    ("blocked", (r"helo command rejected", r"invalid helo", r"\bhelo ?host error")),
    ("nodomain", (r"\bhost (?:or domain name )?(?:not found|unknown)",)),
    ("nx", (r"recipient suspend", r"\b(?:recipient|user|account|mailbox) (?:is )?(?:currently )?suspended",
            r"recipient(?:'s)? (?:account|mailbox) (?:is|has been) (?:blocked|locked|closed|disabled)")),
)

PHRASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("freq", (r"rate[- ]?limit", r"try again slower", r"e-?mail quota exceeded", r"sending quota", r"too many (?:connections|concurrent|smtp sessions|sessions|"
              r"errors|messages|mails|emails|recipients from)", r"connection rate", r"frequency limit",
              r"frequen(?:cy|t) (?:connections|sending)", r"throttl", r"sending rate", r"maximum connection",
              r"connection limit", r"(?:daily|hourly)(?: [\w-]+){0,3} (?:quota|limit)",
              r"too many recipients (?:this|per|an?|in the last) (?:hour|day|minute)",
              r"exceeded the max(?:imum)? (?:e-?mails|messages) per", r"sending too (?:fast|much|many)",
              r"(?:max|maximum) (?:number of )?(?:messages|emails|mails) (?:per|exceeded)",
              r"trop de connexions", r"try again (?:in|after) \d+ (?:minutes|seconds)", r"\bRP[:-]")),
    ("full", (r"mailbox (?:is |was )?full", r"\bfull mailbox", r"(?:over|exceed(?:ed|s|ing)?)(?: the| its| their| his| her"
              r"| his/her)?(?: mailbox| disk| storage| allowed)? quota", r"quota (?:exceeded|violation|reached)",
              r"(?:storage|disk) (?:space|quota) (?:limit|exceeded|used up|full)", r"out of storage",
              r"insufficient (?:storage|space)", r"not enough (?:storage )?space", r"mailfolder is full",
              r"space has been used up", r"boite du destinataire pleine", r"inbox is full",
              r"mailbox size limit", r"exceeded (?:its|the) (?:storage|disk space)", r"user has too many messages",
              r"mailbox would exceed", r"overquota")),
    ("nx", (rf"{_ADDR} (?:does not|doesn't|did not|not|is not|isn't) exist", rf"{_ADDR} (?:unknown|not found|"
            r"not known|no longer (?:exists|valid|active|available|on server|accepts mail))",
            rf"(?:unknown|invalid|non-?existent|nonexistent|no such|bad|inactive|disabled|deactivated|"
            rf"suspended|illegal) {_ADDR}", r"no such (?:user|person|mailbox|recipient|account|address)",
            r"not (?:a |an )?(?:valid|known|registered|local|active)(?: \w+)? (?:user|mailbox|recipient|address|"
            r"customer|account)", r"not our (?:user|customer)", r"(?:user|recipient) (?:is )?not (?:here|local)",
            r"no (?:mailbox|account|one) (?:here |by that name|at this address|found|available)",
            r"(?:account|mailbox|address|user) (?:has been|is|was) (?:disabled|deactivated|terminated|suspended|"
            r"closed|deleted|removed|discontinued|frozen|locked|inactive|cancelled)",
            r"(?:account|mailbox|user) (?:disabled|deactivated|suspended|inactive|locked|expired|closed)",
            r"mailbox (?:is )?(?:unavailable|frozen|disabled|inactive)", r"tried to reach (?:does not exist|is "
            r"(?:disabled|inactive))", r"doesn't have an? [\w.-]+ account", r"\bdd this user doesn't",
            r"badrcptto", r"not in (?:my|the) (?:validrcptto|list of allowed rcpthosts)", r"\bchkusr\b",
            r"recipient (?:address )?rejected: access denied", r"all recipient addresses rejected ?: access denied",
            r"address rejected\.?$", r"address rejected [^ ]+@", r"utilisateur inconnu", r"destinataire invalide",
            r"no longer (?:on server|accepts mail|in use)", r"has moved,? no forwarding", r"\binvalid recipient",
            r"recipient (?:rejected|refused)(?::| -) (?:user|mailbox|invalid)", r"user reject",
            r"nessun utente|no existe (?:dicha persona|ese usuario)", r"not a registered gateway user",
            r"requested action not taken: (?:no such user|mailbox unavailable)", r"\bmailbox not present",
            r"\bunknown local part", r"(?:address|recipient|user) is (?:marked|flagged) as invalid", r"no mail ?box available", r"user doesn't exist", r"rcpt (?:to )?rejected")),
    ("nodomain", (r"host (?:or domain name )?(?:not found|unknown)", r"(?:unknown|no such|invalid) (?:host|domain)(?: name)?"
                  r"(?! of sender)", r"domain (?:\S+ )?(?:does not|doesn't|must) exist", r"name or service not known",
                  r"unrout(?:e)?able (?:recipient )?(?:address|domain)(?! sender)", r"\bnxdomain\b",
                  r"domain (?:is not|isn't) reachable", r"doesn't receive email according to")),
    ("dns", (r"\bdns (?:query|lookup|resolution) (?:failed|failure|error)",)),
    ("nullmx", (r"(?:host|domain) does not accept mail",)),
    ("syntax", (r"need (?:a )?fully-?qualified (?:e-?mail )?address", r"(?:bad|invalid|illegal) (?:recipient |destination )?(?:mailbox |e-?mail )?address syntax",
                r"syntax error in (?:recipient|rcpt|parameters scanning \"to\")", r"malformed (?:recipient |e-?mail )?address",
                r"address (?:is )?malformed", r"recipient address syntax")),
    ("content", (r"not rfc ?5322 compliant", r"rfc ?(?:2822|5322|822)", r"header(?:s)? (?:error|too large|"
                 r"are not accepted|not accepted)", r"improper(?:ly formatted)?", r"8-?bit data", r"media error",
                 r"data format error", r"multiple (?:addresses in from|subject)", r"message header",
                 r"malformed (?:message|header|mime)")),
    ("blocked", (r"(?:refused|rejected|blocked) (?:due to|by) (?:the )?recipient(?:'s)? (?:preferences|settings|filters?|rules?)",
                 r"doesn't want your mail",
                 r"(?:client host|source ip|ip address|sending ip|sending mta|access to this mail system|connections?)"
                 r"\b[^.;]{0,60}\b(?:blocked|bloquee|banned|refused|rejected) (?:for|due to|because)",
                 r"\bip=\S+ - \S*(?:bad|poor|no) reputation", r"spam abuse detected from ip",
                 r"\bspam blocked see\b")),
    ("spam", (r"\bspam\b", r"\bjunk ?mail", r"unsolicited", r"\bbulk mail", r"\bvirus\b", r"\bmalware\b",
              r"\bphish", r"content (?:rejected|denied|filter|blocked|was rejected)", r"message content rejected",
              r"blacklisted (?:url|link|domain in message)", r"\buribl\b|\bsurbl\b", r"illegal attachment",
              r"(?:prohibited|suspicious|dangerous|unsafe) (?:content|attachment|link|url)",
              r"\bsuspicious\b", r"inappropriate (?:words|content)", r"\[(?:CS|HM)0\d\]", r"\binfected\b", r"\bbanned (?:content|attachment|file)", r"\bBANNED:",
              r"attachments? (?:are |is )?not allowed",
              r"rejected due to (?:security|local|content) polic", r"potential (?:security issue|threat)", r"low reputation of the sending",
              r"poor (?:email )?reputation", r"bad reputation", r"user complaints", r"not accepted for policy reasons",
              r"policy violation detected", r"message (?:was )?(?:rejected|blocked|refused) (?:by|due to) (?:the )?"
              r"(?:content|anti-?spam|spam)", r"\bDT:SPM\b", r"\bMI:SPB\b", r"\bTS0[1-4]\b", r"flagged as")),
    ("blocked", (r"blacklist", r"block ?list", r"blocked (?:using|by|ip|because)", r"\b(?:ip|host|sender|client|"
                 r"server|mail server|network) (?:address )?(?:\S+ )?(?:is |was |has been )?(?:blocked|banned|"
                 r"denied|not allowed|rejected|refused)", r"\bdnsbl\b", r"\brbl\b", r"spamhaus", r"spamcop",
                 r"barracuda", r"sorbs", r"\bptr\b", r"reverse (?:dns|lookup)", r"\brdns\b",
                 r"(?:ip|host) name lookup failed", r"may not be mail exchanger", r"open relay",
                 r"banned sending ip", r"not accepting (?:connections|mail) from", r"connections? (?:will )?not "
                 r"(?:be )?accepted from", r"service refuse", r"\bHL:I|\bDY-00|\bOU-00|\bSC-00",
                 r"weren't sent", r"unverifyable sending ips", r"host network not allowed", r"^blocked\b",
                 r"\bblocked\b.*(?:proofpoint|mimecast|barracuda|ip=)", r"invalid ip for sending")),
    ("size", (r"(?:message|mail|data) (?:size|length) (?:exceeds|too large|too big|limit)", r"message (?:is )?too (?:large|big)",
              r"exceeds (?:the )?(?:fixed |maximum |administrative )+(?:message )?(?:size|limit)",
              r"size limit", r"message length exceeds", r"too much mail data")),
    ("sender", (r"sender (?:address|domain) (?:rejected|does not exist|invalid)", r"domain of sender address",
                r"unroutable sender", r"(?:from|sender|mailfrom)[: ]+domain is (?:invalid|not)",
                r"sender (?:verify|verification) failed", r"unauthenticated senders not allowed",
                r"address (?:is )?not verified", r"purported responsible address", r"redundant",
                r"mail from \S+ rejected")),
    ("relay", (r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)", r"not permitted to relay",
               r"not configured to relay", r"relay through this server", r"insecure mail relay",
               r"relay not permitted", r"we do not relay")),
    ("grey", (r"grey ?list", r"gray ?list", r"greylisted", r"try again later", r"please try later",
              r"come back later", r"temporarily (?:deferred|rejected|unavailable|not available)")),
    ("system", (r"insufficient (?:system )?(?:resources|storage|disk)", r"system (?:error|config|full|busy)",
                r"server busy", r"service (?:temporarily )?(?:not available|unavailable)", r"not accepting "
                r"(?:network )?(?:connections|messages)", r"operating system error", r"mailer error",
                r"internal (?:error|server error|system error)", r"local error", r"upstream error",
                r"resources? (?:temporarily )?(?:unavailable|not available)", r"too many hops", r"loop detected",
                r"timed out", r"connection (?:reset|refused|closed)", r"could not load", r"temporary failure")),
    ("protocol", (r"need (?:rcpt|mail)", r"rcpt first", r"bad sequence of commands", r"no (?:valid )?recipients",
                  r"start afresh", r"valid rcpt command must precede", r"protocol (?:violation|error)",
                  r"command (?:parameter )?not (?:implemented|recognized)", r"syntax error", r"out of sequence",
                  r"does not support tls", r"\btls\b (?:required|is required)")),
    ("perm", (r"\bpolicy (?:error|restrictions?)\b", r"delivery (?:restricted|failure) by policy")),
)


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace(" ", r"\s+"), re.IGNORECASE)


COMPILED_DECISIVE: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = tuple(
    (reason, tuple(_compile(p) for p in pats)) for reason, pats in DECISIVE)
COMPILED: tuple[tuple[str, tuple[re.Pattern[str], ...]], ...] = tuple(
    (reason, tuple(_compile(p) for p in pats)) for reason, pats in PHRASES)


def _first(table, text: str) -> str | None:
    for reason, pats in table:
        if any(p.search(text) for p in pats):
            return reason
    return None


def decisive(text: str) -> str | None:
    """The reason a decisive phrase gives (checked before the enhanced code), or None."""
    return _first(COMPILED_DECISIVE, text)


def reason(text: str) -> str | None:
    """The first reason of :data:`PHRASES` whose pattern the reply matches, or None."""
    return _first(COMPILED, text)
