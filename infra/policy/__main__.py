"""The tinyllm policy pack: `pulumi up --policy-pack infra/policy` (add
`--policy-pack-config infra/policy/public.json` for a stack with `tinyllm:public: true`)."""

import sys
from pathlib import Path

from pulumi_policy import Policy, PolicyPack

# Pulumi runs this file as a script; make its sibling rules module importable without installing anything.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pack import policies

pack_policies: list[Policy] = list(policies())  # PolicyPack takes a List[Policy], and list is invariant
PolicyPack(name="tinyllm-least-privilege", policies=pack_policies)
