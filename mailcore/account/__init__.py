"""The account's read side, as the stages see it (and the few writes that belong to it).

- catalog: senders, AccessKeys and the IP allow-list, as ingress and cleanup check them
  (R1 regions, R3 account status, R14 SMTP passwords, R15 activation delay, R28 allow-list)
- domains: DKIM keys and ownership tokens, verification status (R7-R10)
- review: template review states (R20)
- replyto: reply-to verification tickets (R13)
- send_details: the send-detail query (R36), shared by the API and `mailcore send details`

May import: store, spec. Never a stage.
"""
