"""The obs-storage policy pack, as the Pulumi CLI runs it (`pulumi preview --policy-pack policies`).

Building the PolicyPack starts the analyzer's gRPC server and never returns, so this file only
builds it; the rules live in rules.py, which the tests and the offline plan import instead.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

# The CLI runs this directory as a script (runpy puts it first on sys.path), so the import is flat.
import rules

PolicyPack(
    name="obs-storage-policies",
    # Each policy sets its own level; a policy added without one must not block by surprise.
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=rules.POLICIES,
)
