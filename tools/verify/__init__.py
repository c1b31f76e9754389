"""Check a deployed stack against what the program declared: run after `pulumi up`.

    python -m tools.verify --stack local|staging|prod [--only storage|identity|tools|freshness] [--json]
                           [--outputs FILE]

Reads the stack's outputs with `pulumi stack output --json --show-secrets` (or from FILE, JSON of
the same shape), then talks to the real buckets, identities and tools:
- storage: every bucket exists, anonymous GET/LIST are denied, versioning and lifecycle rules read
  back equal to the declared ones; on AWS also the public-access block, ownership controls,
  default encryption and the TLS-only bucket policy;
- identity: with each tool's own credentials, its granted actions succeed on its own bucket and
  everything else is denied (AWS: each role's trust and policy read back, and IAM policy
  simulation per role; EC2 fleet roles: trusted by EC2 alone);
- tools: readiness endpoints, and on local a log line and a trace pushed, queried back and
  flushed into the buckets; Grafana's datasource health; on EC2 fleets, each group's healthy
  instances against its Cloud Map registrations, and the load balancer's target health
  (tools/verify/fleets.py);
- freshness: per tool and tenant prefix, the newest upload in the bucket is younger than the
  tool's flush/upload interval allows (tools/verify/freshness.py).

One line per check (PASS, FAIL or SKIP with the reason), a summary, exit code 1 on any FAIL
(2, with one line, when the outputs cannot be read, hold placeholders instead of secrets, or on
AWS when there are no credentials to check with). Secrets are used, never printed. Every probe object is
deleted again (all versions).
"""
