"""The durable queue (in the store) and its manager.

- states: the queue's states and every allowed transition, as one table; the only module that
  changes a recipient's state
- qmgr: claims due recipients under leases, hands them to delivery, records each outcome with
  its event (R21, R25) and the invalid-address base (R37) in one transaction; retries with
  backoff (R33)

May import: delivery, message, store.
"""
