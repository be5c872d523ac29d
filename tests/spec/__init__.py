"""Tests of mailcore.spec: loading, schema and semantic checks, file:line:col errors."""
