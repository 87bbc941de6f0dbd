# Config file for jupyterhub-idle-culler, passed with --config-file by hpchub's service entry:
# the per-server policy replaces the culler's single global timeout.
from hpchub.culling.arbiter import cull_arbiter

c.IdleCuller.cull_arbiter_hook = cull_arbiter  # noqa: F821 - c comes from traitlets
