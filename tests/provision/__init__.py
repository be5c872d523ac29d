"""Tests of provision: records, the RFC 2136 client, Pulumi, verification; the built-in DNS server and Knot."""
