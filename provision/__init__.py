"""provision: the DNS records each domain needs (R7, R8), reconciled through Pulumi, then verified
against live DNS (R9, R10).

- records: the record sets per domain (ownership TXT, SPF merge, MX, tracking CNAME, DKIM, DMARC)
- account: the account's records as Pulumi inputs; program: the inline Automation API program
- dynamic: the Pulumi dynamic provider over rfc2136 (RFC 2136 UPDATE with TSIG)
- cloud: Alibaba Cloud DNS, Cloudflare and Route53 through their Pulumi packages
- verify: dnspython queries against the expected records: verified, usable, failed, drift
- stackstate: what an interrupted run leaves in the file backend (stale locks, pending operations,
  orphaned provider processes) and clearing it, so the next apply converges
- pulumi_cli: obtains a Pulumi CLI (PATH, installer, or a build from the Go module proxy)
- dnsserver, zonefiles, dnsrunner, embedded: the built-in authoritative DNS server

May import: mailcore.spec and mailcore.store, never the service (which never imports Pulumi).
"""
