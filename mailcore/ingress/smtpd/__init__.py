"""SMTP submission (R31, R32): aiosmtpd runs the protocol, this package decides.

- server: SmtpServer, the listener (TLS, aiosmtpd's loop)
- settings: the listener's settings from config
- protocol: aiosmtpd's SMTP class with the service's changes (cheaper DATA and paths, 421s)
- handler: the policy at AUTH, MAIL, RCPT and DATA; hands the message to cleanup
- parsing: X-AliDM-Trace (R21) and DSN parameters
- replies: every line the client can see, as one table
- tls: certificates and contexts; bench: `python -m mailcore.ingress.smtpd.bench`
"""
