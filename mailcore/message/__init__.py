"""Messages as cleanup builds them and qmgr re-renders them: shared by both stages.

- render: template variables (R19), the header fields cleanup reads, a batch message rendered
  and signed per recipient at delivery time
- dkim: DKIM signatures with each domain's key (dkimpy, RSA in OpenSSL)

May import: store.
"""
